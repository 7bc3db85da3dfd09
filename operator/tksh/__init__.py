"""tksh: the control plane of the ТКШ central data system (Order No. 129)."""

__version__ = "0.1.0"

GROUP = "tksh.kz"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
