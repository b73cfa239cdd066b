"""The HTTP decision service (`policy serve`): FastAPI on uvicorn, every decision logged before it is answered.

Importing this package imports FastAPI; `import engine` never does.
"""
