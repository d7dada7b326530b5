"""``fakefs://``: a filesystem that behaves like an object store (no folders, paths are keys) on a local
folder, registered with Beam so the catalog's remote code paths run without a network."""
import os

from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.localfilesystem import LocalFileSystem

PREFIX = "fakefs://"


class FakeFileSystem(LocalFileSystem):
    #: The local folder behind ``fakefs://``; tests set it.
    root = "/nonexistent"

    @classmethod
    def scheme(cls):
        return "fakefs"

    def _local(self, path):
        assert path.startswith(PREFIX), path
        return os.path.join(self.root, path[len(PREFIX):])

    def join(self, basepath, *paths):
        return "/".join([basepath.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def has_dirs(self):
        return False

    def _url_dirname(self, url):
        return self.split(url)[0]

    def mkdirs(self, path):
        pass

    def _list(self, prefix):
        for dirpath, _, files in os.walk(self.root):
            for name in files:
                local = os.path.join(dirpath, name)
                uri = PREFIX + os.path.relpath(local, self.root)
                if uri.startswith(prefix):
                    yield FileMetadata(uri, os.path.getsize(local), os.path.getmtime(local))

    def create(self, path, *args, **kwargs):
        return super().create(self._local(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
        return super().open(self._local(path), *args, **kwargs)

    def copy(self, sources, destinations):
        return super().copy([self._local(p) for p in sources], [self._local(p) for p in destinations])

    def rename(self, sources, destinations):
        return super().rename([self._local(p) for p in sources], [self._local(p) for p in destinations])

    def exists(self, path):  # objects only, as in an object store
        return os.path.isfile(self._local(path))

    def size(self, path):
        return os.path.getsize(self._local(path))

    def last_updated(self, path):
        return os.path.getmtime(self._local(path))

    def checksum(self, path):
        return str(self.size(path))

    def metadata(self, path):
        return FileMetadata(path, self.size(path), self.last_updated(path))

    def delete(self, paths):
        import shutil

        for p in paths:
            local = self._local(p)
            if os.path.isdir(local):
                shutil.rmtree(local)
            elif os.path.exists(local):
                os.remove(local)
            else:  # a prefix: delete every object under it
                for meta in list(self._list(p.rstrip("/") + "/")):
                    os.remove(self._local(meta.path))
