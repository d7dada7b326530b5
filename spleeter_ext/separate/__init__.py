"""Separation: chunked overlap-add inference and the file-streaming :class:`Separator`."""
