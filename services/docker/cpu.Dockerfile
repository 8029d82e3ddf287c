# The embedded CPU models as services (services/cpu.yaml): Ray Serve TTS (espeak) + ASR (Whisper base).
# docker build -f services/docker/cpu.Dockerfile -t empathy-services-cpu .
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake libsndfile1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/empathy-data
COPY services/requirements/cpu.txt services/requirements/cpu.txt
RUN pip install --no-cache-dir -r services/requirements/cpu.txt
COPY . .
RUN pip install --no-cache-dir --no-deps .
EXPOSE 8000
CMD ["python", "-m", "empathy_data.serving", "services/cpu.yaml"]
