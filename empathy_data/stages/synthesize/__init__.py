"""synthesize: render each script turn in the planned voice and emotion."""
