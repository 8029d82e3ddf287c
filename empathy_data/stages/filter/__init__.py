"""filter: score every utterance (ASR error rate, emotion, duration, silence) and decide each exchange."""
