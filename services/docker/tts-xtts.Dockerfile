# XTTS-v2 (coqui-tts) as a Ray Serve service. Mount the XTTS-v2 directory at /models/XTTS-v2 and serve
# a config whose tts app has args `tts: {backend: xtts, model_dir: /models/XTTS-v2, device: cuda,
# accept_license: true}` (only after reading the Coqui Public Model License).
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /opt/empathy-data
COPY services/requirements/tts-xtts.txt services/requirements/
RUN pip install --no-cache-dir -r services/requirements/tts-xtts.txt
COPY . .
RUN pip install --no-cache-dir --no-deps .
EXPOSE 8000
CMD ["python", "-m", "empathy_data.serving", "/opt/empathy-data/services/xtts.yaml"]
