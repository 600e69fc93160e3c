# A Dask worker for `autograder grade --cluster tcp://SCHEDULER:8786`.
#
# It holds the course environment and the course itself (solutions/, nbgrader_config.py
# and the autograder), because a worker refuses every task whose course hash differs from
# the grading command's: build it from the same commit you grade with, and rebuild after
# any change to solutions/, nbgrader_config.py or autograder/.
#
#   docker build -f docs/worker.Dockerfile -t course-grader:$(git rev-parse --short HEAD) .
#
# The student kernels run under bubblewrap, each as its own uid: the worker runs as root
# and its container must be allowed to create namespaces (docs/INSTRUCTOR.md, "What a
# worker needs", gives the container settings and a one-line check).
FROM python:3.11-slim-bookworm

# bwrap (the sandbox) and setpriv (util-linux: the kernel's own uid).
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap util-linux \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /course

# The CPU build of PyTorch first, pinned as in the Makefile: a plain `torch`
# requirement would pull several GB of CUDA packages.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# The course packages and the grading extra (nbgrader, nbclient, ipykernel, distributed).
COPY pyproject.toml README.md ./
COPY actlab/ actlab/
COPY autograder/ autograder/
RUN pip install --no-cache-dir ".[grade]"

# What the course hash covers besides the autograder: the source notebooks and the config.
COPY solutions/ solutions/
COPY nbgrader_config.py ./

# The worker finds its course here, whatever path the grading command's course has.
ENV AUTOGRADER_COURSE=/course \
    MPLBACKEND=Agg \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1

# One submission at a time per worker process: give the pod/job N cores and run
#   dask worker tcp://SCHEDULER:8786 --nworkers N --nthreads 1
USER root
ENTRYPOINT ["dask", "worker", "--nthreads", "1", "--no-dashboard"]
