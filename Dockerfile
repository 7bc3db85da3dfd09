# syntax=docker/dockerfile:1
# One image for every process: `tksh operator`, `tksh authz`, `tksh sandbox`.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/tksh
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/tksh/bin/pip install .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/tksh/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TKSH_CRDS_DIR=/opt/tksh/share/crds \
    TKSH_POLICIES_DIR=/opt/tksh/share/policies
RUN groupadd --system --gid 10001 tksh \
 && useradd --system --uid 10001 --gid tksh --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin tksh
COPY --from=build /opt/tksh /opt/tksh
COPY charts/tksh/crds /opt/tksh/share/crds
COPY examples /opt/tksh/share/examples
COPY policies /opt/tksh/share/policies
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["tksh"]
CMD ["operator"]
