# aigc as a Hugging Face Docker Space (or any container host): CPU-only PyTorch, Streamlit on port 8501.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIGC_DATA_DIR=/home/user/app/data \
    AIGC_RUNS_DIR=/home/user/app/runs

# Spaces run the container as UID 1000, with $HOME writable
RUN useradd --create-home --uid 1000 user
USER user
WORKDIR /home/user/app
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH

# PyTorch's CPU-only wheels first (a few hundred MB instead of ~5 GB of CUDA libraries); the pins in
# requirements.txt are then already satisfied (a +cpu build satisfies ==2.14.1).
RUN pip install --user --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1
COPY --chown=user requirements.txt .
RUN pip install --user -r requirements.txt

COPY --chown=user . .
# fetch MNIST at build time (the builder is online) so the first visitor does not wait for the download
RUN python -c "from aigc import load_mnist; load_mnist(True); load_mnist(False)" && mkdir -p runs

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4)"
# enableXsrfProtection=false: a Space is shown inside an iframe on huggingface.co, where Chrome drops the
# XSRF cookie as a third-party cookie and every checkpoint upload would fail with 403 (see Hugging Face's
# "Spaces cookie limitations"). The app has no accounts or secrets for such a check to protect.
CMD ["streamlit", "run", "app.py", "--server.port", "8501", "--server.address", "0.0.0.0", \
     "--server.enableXsrfProtection", "false"]
