{{/* The access tokens' signing keys. The operator creates and rotates the Secret of this name in the release
namespace (private keys; only the operator reads it) and publishes "<name>-public" (public keys only), which the
decision point mounts. Default: "<fullname>-signing-keys". */}}
{{- define "tksh.signingKeys.secretName" -}}
{{- default (printf "%s-signing-keys" (include "tksh.fullname" .)) .Values.operator.signingKeys.secretName -}}
{{- end -}}

{{- define "tksh.signingKeys.publicSecretName" -}}
{{- printf "%s-public" (include "tksh.signingKeys.secretName" .) -}}
{{- end -}}

{{/* Where the decision point mounts the public keys. */}}
{{- define "tksh.authz.keysDir" -}}
/etc/tksh/keys
{{- end -}}

{{/* The operator's token settings as environment variables; refuses a rotation period shorter than twice the token
lifetime (a retired key must verify every token it signed until that token expires). */}}
{{- define "tksh.tokens.env" -}}
{{- $op := .Values.operator -}}
{{- if lt (int $op.signingKeys.rotationPeriodSeconds) (mul 2 (int $op.tokens.lifetimeSeconds)) -}}
{{- fail (printf "operator.signingKeys.rotationPeriodSeconds: %v must be at least twice operator.tokens.lifetimeSeconds (%v)" $op.signingKeys.rotationPeriodSeconds (mul 2 (int $op.tokens.lifetimeSeconds))) -}}
{{- end -}}
- name: TKSH_SIGNING_KEYS_SECRET
  value: {{ include "tksh.signingKeys.secretName" . | quote }}
- name: TKSH_SIGNING_KEYS_NAMESPACE
  value: {{ .Release.Namespace | quote }}
- name: TKSH_KEY_ROTATION_PERIOD
  value: {{ $op.signingKeys.rotationPeriodSeconds | int64 | quote }}
- name: TKSH_TOKEN_LIFETIME
  value: {{ $op.tokens.lifetimeSeconds | int64 | quote }}
- name: TKSH_TOKEN_ISSUER
  value: {{ $op.tokens.issuer | quote }}
- name: TKSH_TOKEN_AUDIENCE
  value: {{ $op.tokens.audience | quote }}
{{- end -}}
