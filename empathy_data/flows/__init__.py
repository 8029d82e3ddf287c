"""The Prefect flow of a build (`build`: chunk tasks on the configured task runner) and its deployment
(`deploy`). The CLI starts the flow with the validated inputs.

May import: every folder but tools/ and the CLI.
"""
