# faster-whisper on CUDA (CTranslate2 needs CUDA 12 + cuDNN 9) as a Ray Serve service. Mount the
# CTranslate2 model directory at /models and edit services/gpu.yaml's `asr` app to match.
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /opt/empathy-data
COPY services/requirements/asr-faster-whisper-gpu.txt services/requirements/
RUN pip install --no-cache-dir -r services/requirements/asr-faster-whisper-gpu.txt
COPY . .
RUN pip install --no-cache-dir --no-deps .
EXPOSE 8000
CMD ["python", "-m", "empathy_data.serving", "services/gpu.yaml"]
