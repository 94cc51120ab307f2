import sys, threading, faulthandler
sys.path.insert(0, "/work/main/tests/providers")
from test_http_cancel import *  # noqa

def test_dbg(serve, make_client):
    server = serve("busy", "ok")
    client = make_client(f"http://127.0.0.1:{server.port}/v1")
    async def scenario():
        task = asyncio.create_task(client.post_json_async("/chat", {}))
        await _until(lambda: len(server.peers) == 1)
        await asyncio.sleep(0.05)
        await _cancel(task)
    _run(scenario())
    pm = client._session.adapters["http://"].poolmanager
    for key, pool in list(pm.pools._container.items()):
        print("pool", pool, pool.pool.qsize())
        for c in list(pool.pool.queue):
            print(" conn", c, c and c.sock, c and getattr(c, "owner", "?"))
    client.close()
    faulthandler.dump_traceback_later(3, exit=False)
