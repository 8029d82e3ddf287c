# emotion2vec+ (funasr) as a Ray Serve service. Mount the emotion2vec_plus_large directory at
# /models/emotion2vec_plus_large and serve a config whose emotion app has args
# `emotion: {backend: emotion2vec, model: /models/emotion2vec_plus_large, device: cuda}`.
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv libsndfile1 ffmpeg \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /opt/empathy-data
COPY services/requirements/emotion-emotion2vec.txt services/requirements/
RUN pip install --no-cache-dir -r services/requirements/emotion-emotion2vec.txt
COPY . .
RUN pip install --no-cache-dir --no-deps .
EXPOSE 8000
CMD ["python", "-m", "empathy_data.serving", "/opt/empathy-data/services/emotion.yaml"]
