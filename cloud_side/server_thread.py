"""An asyncio server (``await start()``, ``await stop()``) on its own event loop in a background
thread, for synchronous callers: ``with ServerThread(server) as running: running.call(coroutine)``."""

import asyncio
import threading


class ServerThread:
    """Runs ``server`` on a private event loop; ``call`` runs a coroutine there and returns its result."""

    def __init__(self, server, name="edgekit-server"):
        self.server = server
        self._name = name
        self._loop = None
        self._thread = None

    @property
    def port(self):
        return self.server.port

    @property
    def rejections(self):
        return self.server.rejections

    def call(self, coroutine, timeout=None):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def start(self):
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure = []

        def serve():
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.server.start())
            except BaseException as err:  # reported to the starting thread
                failure.append(err)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name=self._name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._loop.close()
            raise failure[0]
        return self

    def stop(self):
        if self._thread is None:
            return
        self.call(self.server.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
