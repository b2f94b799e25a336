"""The local verify page (`shield serve`): drop a photo, read the verdict; protect a photo.

``create_app(settings)`` builds the FastAPI app (shield.serve.app); the command in
shield.commands.serve runs it with uvicorn on 127.0.0.1.
"""

from shield.serve.app import DEFAULT_MAX_UPLOAD_BYTES, ServeOptions, create_app

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "ServeOptions", "create_app"]
