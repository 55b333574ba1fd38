"""The web application of ``ledrec look``: Starlette routes over :class:`ledrec.look.data.Look`, pages
rendered on the server by Jinja2 templates, one small CSS file, no JavaScript.

Why this shape: every page is a function of its URL (the history travels as ``h=ID`` in the query string, a
form adds or removes one id), so a page can be bookmarked, reloaded, compared, screenshotted and tested by
``TestClient`` without a browser; the work is in :mod:`ledrec.look.data` (numpy), the web layer only routes
and renders. Starlette rather than a larger framework: routing, templates, static files and a test client,
with nothing to configure. Errors are pages (400: a bad parameter, 404: no such thing, 500: logged to
stderr, never a traceback to the browser).
"""

from __future__ import annotations

import functools
import logging
import math
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ledrec.look import jobs
from ledrec.look.data import K_MAX, SOURCE_NAMES, SOURCES, Look, LookError, check_k

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
PALETTE = (  # matplotlib's tab10: the ten commonest categories of the map; the rest grey
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f",
)  # fmt: skip
OTHER = "#c7c7c7"
MAP_SIZE = 760  # the map's SVG view box, pixels


def create_app(look: Look) -> Starlette:
    """The application serving ``look``'s pages."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals |= {"SOURCE_NAMES": SOURCE_NAMES, "SOURCES": SOURCES, "K_MAX": K_MAX}
    templates.env.filters["score"] = _score
    plots: dict[tuple[str, Any], str] = {}  # (catalogue, files' state) → SVG: drawn once per change on disk

    def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        t0 = time.perf_counter()
        cat_name = context.get("cat").name if context.get("cat") is not None else ""
        base = {"look": look, "catalogues": list(look.catalogues), "current": cat_name, "path": request.url.path}
        response = templates.TemplateResponse(request, name, base | context, status_code=status)
        response.headers["Server-Timing"] = f"render;dur={1000 * (time.perf_counter() - t0):.1f}"
        return response

    def page(handler: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        """A route whose handler runs in a worker thread (numpy work must not stall the event loop) and
        whose errors are pages: LookError → its status, anything else → 500 (logged with its traceback)."""

        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            try:
                return await run_in_threadpool(handler, request)
            except LookError as exc:
                return render(request, "error.html", {"status": exc.status, "message": str(exc)}, exc.status)
            except Exception:
                log.exception("%s failed", request.url)
                message = "the page failed; the server's log (stderr) says why"
                return render(request, "error.html", {"status": 500, "message": message}, 500)

        return route

    def figure8(request: Request) -> Response:
        q = request.query_params
        cat = look.catalogue(q.get("catalogue"))
        k = check_k(q.get("k", 10))
        typed = [i for i in q.getlist("h") if i]
        if "add" in q or "drop" in q or "random" in q:  # a form's action: answered by the page it leads to
            if "random" in q:
                user = look.random_user(cat, int(time.time_ns() % 2**32))
                return RedirectResponse(_url("/", cat.name, k, user=user), status_code=303)
            add = q.get("add", "")
            typed = [i for i in typed if i != q.get("drop")] + ([add] if add and add not in typed else [])
            # (an added item ends its search: the box is empty for the next title; a drop keeps the search)
            search = "" if "add" in q else q.get("q", "")
            return RedirectResponse(_url("/", cat.name, k, history=typed, q=search), status_code=303)
        user = q.get("user", "").strip()
        if user:
            history = look.user_history(cat, user)
            shown_history = look.shown(cat, history)
        else:
            history = look.history_items(cat, typed)
            shown_history = look.shown_ids(cat, typed)
        recs = look.recommend(cat, history, k) if (user or typed) else None
        text = q.get("q", "").strip()
        found = look.search(cat, text) if text else []
        in_history = {r.id for r in shown_history}
        context = {
            "cat": cat,
            "k": k,
            "user": user,
            "typed": typed,
            "history": shown_history,
            "recs": recs,
            "q": text,
            "found": [r for r in found if r.id not in in_history],
            "users": cat.users[:200].tolist() if cat.has_events else [],
            "map_url": _url("/map", cat.name, k, user=user, history=typed),
            "self_url": lambda **kw: _url("/", cat.name, k, **kw),
        }
        return render(request, "figure8.html", context)

    def item(request: Request) -> Response:
        q = request.query_params
        cat = look.catalogue(q.get("catalogue"))
        item_id = q.get("id", "")
        if not item_id:
            raise LookError("which item? /item?id=ITEM", 400)
        k = check_k(q.get("k", 20))
        return render(request, "item.html", {"cat": cat, "k": k, **look.item(cat, item_id, k)})

    def item_map(request: Request) -> Response:
        q = request.query_params
        cat = look.catalogue(q.get("catalogue"))
        k = check_k(q.get("k", 10))
        user = q.get("user", "").strip()
        typed = [i for i in q.getlist("h") if i]
        history = look.user_history(cat, user) if user else look.history_items(cat, typed)
        recs = look.recommend(cat, history, k)["led"] if len(history) else []
        projection = look.maps.get(cat, wait=0.5)
        points, legend, marked = _map_points(look, cat, projection, history, recs or [])
        context = {
            "cat": cat,
            "k": k,
            "user": user,
            "typed": typed,
            "projection": projection,
            "points": points,
            "legend": legend,
            "marked": marked,
            "size": MAP_SIZE,
            "pending": projection.method != "t-SNE" and look.maps.method == "tsne",
            "back_url": _url("/", cat.name, k, user=user, history=typed),
        }
        return render(request, "map.html", context)

    def daily(request: Request) -> Response:
        if look.published is None:
            raise LookError(
                f"{look.path} is not a published root: the daily job's page reads one (ledrec pipeline --out ROOT)",
                404,
            )
        job = jobs.daily_job(look.published)
        return render(request, "pipeline.html", {"cat": None, "job": job})

    def plot(request: Request) -> Response:
        if look.published is None:
            raise LookError(f"{look.path} is not a published root", 404)
        name = request.path_params["catalogue"]
        job = jobs.daily_job(look.published)
        if name not in job["catalogues"]:
            raise LookError(f"no catalogue {name[:64]!r} in {look.published}", 404)
        part = job["catalogues"][name]
        key = (name, repr((part["switches"], part["decisions"], part["versions"])))
        if key not in plots:
            plots[key] = jobs.plot_catalogue(name, part)
        return Response(plots[key], media_type="image/svg+xml")

    async def not_found(request: Request, exc: HTTPException) -> Response:
        return render(request, "error.html", {"status": exc.status_code, "message": exc.detail}, exc.status_code)

    routes = [
        Route("/", page(figure8), name="figure8"),
        Route("/item", page(item), name="item"),
        Route("/map", page(item_map), name="map"),
        Route("/pipeline", page(daily), name="pipeline"),
        Route("/pipeline/{catalogue:path}.svg", page(plot), name="plot"),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_found})


def _url(path: str, catalogue: str, k: int, *, user: str = "", history: list[str] | None = None, q: str = "") -> str:
    """A page's URL: the catalogue, k, a user or a typed history (h=ID, in order) and a search."""
    params: list[tuple[str, Any]] = [("catalogue", catalogue)] if catalogue else []
    if k != 10:
        params.append(("k", k))
    if user:
        params.append(("user", user))
    params += [("h", h) for h in history or []]
    if q:
        params.append(("q", q))
    return path + ("?" + urlencode(params) if params else "")


def _score(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.0f}" if abs(value) >= 100 and float(value).is_integer() else f"{value:.3g}"


def _map_points(
    look: Look, cat: Any, projection: Any, history: np.ndarray, recs: list[Any]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]], dict[str, int]]:
    """The map's circles (x, y in the view box, colour, title, role), its legend, and how many of the
    history and recommendations are on it (t-SNE places only its sample)."""
    items = projection.items
    ids = cat.model.item_ids[cat.members[items]].tolist()
    titles = look.items.titles(ids)
    categories = look.items.category(ids)
    names, counts = np.unique([c for c in categories if c is not None], return_counts=True)
    top = [str(n) for n in names[np.argsort(-counts, kind="stable")][: len(PALETTE)]]
    colour = {name: PALETTE[k] for k, name in enumerate(top)}
    xy = projection.xy
    pad = 12
    lo, hi = (xy.min(axis=0), xy.max(axis=0)) if len(xy) else (np.zeros(2), np.ones(2))
    scale = (MAP_SIZE - 2 * pad) / np.maximum(hi - lo, 1e-9)
    pos = (xy - lo) * scale + pad
    in_history = {int(cat.local[i]) for i in history.tolist()}
    recommended = {r.id for r in recs}
    points, on_map = [], {"history": 0, "recs": 0}
    for k, item in enumerate(ids):
        role = "history" if int(items[k]) in in_history else "rec" if item in recommended else ""
        on_map["history" if role == "history" else "recs"] += bool(role)
        label = titles[k] + (f" ({categories[k]})" if categories[k] else "")
        points.append(
            {
                "x": round(float(pos[k, 0]), 1),
                "y": round(float(pos[k, 1]), 1),
                "fill": colour.get(categories[k] or "", OTHER),
                "title": label,
                "role": role,
                "id": item,
            }
        )
    points.sort(key=lambda p: p["role"] != "")  # the marked ones last: drawn on top
    legend = [(name, colour[name]) for name in top] + ([("other", OTHER)] if len(names) > len(top) else [])
    marked = {"history": len(in_history), "history_on_map": on_map["history"], "recs": len(recs)}
    marked["recs_on_map"] = on_map["recs"]
    return points, legend, marked


def serve(look: Look, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> dict[str, Any]:
    """Listen on ``host:port`` (0: a port the system picks), print the ready line (one JSON object with the
    URL of the port actually bound) to stdout, and serve until SIGINT / SIGTERM. The socket is bound here and
    handed to uvicorn, so the port named is the port listened on (no free-port guess that another process
    could take in between). Returns the ready line's object."""
    import json

    import uvicorn

    from ledrec.errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts: ready means reachable
    bound = sock.getsockname()[1]
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    ready = {
        "url": f"http://{shown_host}:{bound}/",
        "port": bound,
        "model": str(look.path),
        "catalogues": {
            name: {"items": len(cat.members), "users": None if cat.users is None else len(cat.users)}
            for name, cat in look.catalogues.items()
        },
        "items": look.items.source,
        "events": look.events_path,
        "published": look.published is not None,
        "load_s": round(look.load_s, 2),
    }
    config = uvicorn.Config(
        create_app(look),
        log_level="info" if verbose else "warning",
        access_log=verbose,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    print(json.dumps(ready), flush=True)
    look.maps.start()  # t-SNE now, in child processes: the map is ready by the time it is asked for
    # uvicorn stops gracefully on SIGINT / SIGTERM, then raises the signal again with the handlers it found:
    # with these, a stop asked for is a normal exit (status 0, no KeyboardInterrupt traceback)
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stdout.flush()
    return ready


def _stopped(sig: int, frame: Any) -> None:
    log.info("stopped by signal %d", sig)
