# CosyVoice2 as a Ray Serve service, in the environment CosyVoice documents (Python 3.10, its own pinned
# requirements). This package's `cosyvoice2` adapter runs inside it; the package is installed without its
# dependencies (--ignore-requires-python: the service modules it loads avoid 3.11-only syntax).
# Mount the CosyVoice2-0.5B directory at /models/CosyVoice2-0.5B.
FROM nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
RUN apt-get update && apt-get install -y --no-install-recommends python3.10 python3.10-venv git git-lfs \
    libsndfile1 ffmpeg sox && rm -rf /var/lib/apt/lists/*
RUN python3.10 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN git clone --recursive https://github.com/FunAudioLLM/CosyVoice.git /opt/CosyVoice \
    && pip install --no-cache-dir -r /opt/CosyVoice/requirements.txt
WORKDIR /opt/empathy-data
COPY services/requirements/tts-service.txt services/requirements/
RUN pip install --no-cache-dir -r services/requirements/tts-service.txt
COPY . .
RUN pip install --no-cache-dir --no-deps --ignore-requires-python .
EXPOSE 8000
CMD ["python", "-m", "empathy_data.serving", "services/gpu.yaml"]
