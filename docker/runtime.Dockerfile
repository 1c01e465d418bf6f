# The runtime image for workbench-dsl's launcher components on a cluster
# (`[cluster] runtime_image` in workbench.toml): @train, @sweep, @register and
# @serve steps, the TrainJob nodes and Katib trials they start, and custom
# KServe predictors all run in it.
#
# Build from the repository root and push where your cluster can pull from:
#
#   docker build -f docker/runtime.Dockerfile -t registry.example/workbench:0.1.0 .
#   docker build -f docker/runtime.Dockerfile --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 \
#       -t registry.example/workbench:0.1.0-cu124 .
FROM python:3.11-slim

# torch for @train (CPU wheels by default; a CUDA index for GPU nodes).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/workbench
COPY pyproject.toml constraints.txt README.md ./
COPY workbench_dsl ./workbench_dsl
RUN pip install --index-url "$TORCH_INDEX" "torch==${TORCH_VERSION}" \
 && pip install -c constraints.txt ".[cluster]"
