"""`python -m workbench serve DIR`: verify a bundle, then serve it with uvicorn.

Before any socket opens: the manifest is verified (a tampered or incomplete bundle is one
line on stderr and exit 2), drift between the installed packages and the bundle's is printed
as warnings, and the bundle's local model files are checked. With `--workers N > 1` uvicorn
runs `app_from_env` in each worker process; the settings travel in `WORKBENCH_SERVE` and
Prometheus runs in multiprocess mode in a folder under the bundle's `var/`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SETTINGS_ENV = "WORKBENCH_SERVE"


@dataclass
class ServeSettings:
    """What a worker needs to build the app; JSON in `WORKBENCH_SERVE` across processes."""

    bundle: str
    digest: str | None = None
    root: str = "."
    index: str | None = None
    max_body_bytes: int = 1_000_000
    trace: bool = False
    tracking_uri: str | None = None
    limits: str | None = None
    redis: str | None = None
    limiter_failure: str = "closed"
    api_key_env: str | None = None
    keys: str | None = None
    jwt_secret_env: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_team_claim: str = "team"
    broker: str | None = None
    callback_allow: list[str] | None = None
    job_concurrency: int = 4

    def gateway(self) -> Any:
        """The authenticator these settings ask for (None: no auth; then loopback only)."""
        from workbench.serve.auth import gateway_from

        return gateway_from(
            keys_file=self.keys,
            jwt_secret_env=self.jwt_secret_env,
            jwt_public_key=self.jwt_public_key,
            jwt_issuer=self.jwt_issuer,
            jwt_audience=self.jwt_audience,
            jwt_team_claim=self.jwt_team_claim,
            api_key_env=self.api_key_env,
        )

    def limiter(self) -> Any:
        """The rate limiter: the `--limits` file's team limits (or none), in process or in Redis."""
        from workbench.serve.limits import limiter_from

        return limiter_from(self.limits, self.redis, self.limiter_failure)


def add_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="serve a bundle: OpenAI-compatible API, metrics, request log")
    serve.add_argument("bundle", help="the bundle folder (from `export`)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    serve.add_argument("--max-body-bytes", type=int, default=1_000_000, help="larger request bodies get a 413")
    serve.add_argument("--root", default=".", help="base of the bundle config's relative paths (a slim index)")
    serve.add_argument("--index", help="the retrieval index file, for a slim bundle")
    serve.add_argument("--trace", action="store_true", help="log every request as an MLflow trace")
    serve.add_argument("--tracking-uri", help="MLflow tracking URI for --trace (default: $MLFLOW_TRACKING_URI)")
    serve.add_argument("--api-key-env", help="require `Authorization: Bearer <the value of this env var>`")
    serve.add_argument("--keys", help="an API keys file (from `keys create`): key auth, re-read when it changes")
    serve.add_argument("--jwt-secret-env", help="accept HS256 JWTs signed with the secret in this env var")
    serve.add_argument("--jwt-public-key", help="accept RS256 JWTs verified with this PEM public key file")
    serve.add_argument("--jwt-issuer", help="the JWT `iss` to require")
    serve.add_argument("--jwt-audience", help="the JWT `aud` to require")
    serve.add_argument("--jwt-team-claim", default="team", help="the JWT claim naming the team (default: team)")
    serve.add_argument("--broker", help="jobs via RabbitMQ (amqp://...) to `worker` processes (default: in-process)")
    serve.add_argument(
        "--callback-allow", action="append", default=[], metavar="HOST", help="a job callback host besides loopback"
    )
    serve.add_argument("--job-concurrency", type=int, default=4, help="in-process jobs run at a time (default 4)")
    serve.add_argument("--limits", metavar="FILE", help="team rate limits and daily quotas (YAML)")
    serve.add_argument("--redis", metavar="URL", help="share the limits across workers and replicas in Redis")
    serve.add_argument(
        "--limiter-failure",
        choices=["closed", "open"],
        default="closed",
        help="when Redis is unreachable: refuse with 503 (closed, the default) or admit uncounted (open)",
    )
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(func=cmd_serve)


def _open(settings: ServeSettings, *, verify: bool) -> Any:
    from workbench.bundle import Bundle
    from workbench.core.errors import BundleError

    bundle = Bundle.open(settings.bundle, verify=verify, root=settings.root, index=settings.index)
    if settings.digest is not None and bundle.digest != settings.digest:
        raise BundleError(f"{settings.bundle}: the bundle changed since the server verified it")
    return bundle


def _tracer(settings: ServeSettings, config_name: str) -> Any:
    if not settings.trace:
        return None
    from workbench.core.errors import ConfigError
    from workbench.serve.tracing import TraceWriter
    from workbench.tracking import MlflowTracker

    uri = settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ConfigError("--trace needs --tracking-uri or MLFLOW_TRACKING_URI")
    return TraceWriter(MlflowTracker(uri), experiment=f"{config_name}-served")


def build_app(settings: ServeSettings, bundle: Any = None) -> Any:
    """The app of `settings`' bundle (opened here, without re-hashing, unless given)."""
    from workbench.serve.app import create_app
    from workbench.serve.jobs import bundle_jobs
    from workbench.serve.service import ServedPipeline

    bundle = bundle if bundle is not None else _open(settings, verify=False)
    authenticate = settings.gateway()
    service = ServedPipeline.from_bundle(bundle, tracer=_tracer(settings, bundle.config.name))
    limiter = settings.limiter()
    jobs = bundle_jobs(
        bundle,
        service,
        broker_url=settings.broker,
        concurrency=settings.job_concurrency,
        callback_allow=tuple(settings.callback_allow or ()),
        limiter=limiter,
    )
    return create_app(
        service,
        limiter=limiter,
        max_body_bytes=settings.max_body_bytes,
        authenticate=authenticate,
        jobs=jobs,
    )


def app_from_env() -> Any:
    """uvicorn's app factory in each worker process (`--workers N`)."""
    return build_app(ServeSettings(**json.loads(os.environ[SETTINGS_ENV])))


def _multiprocess_metrics(bundle: Any) -> Path:
    """A fresh folder for Prometheus' multiprocess files, set before any worker imports it."""
    folder = Path(bundle.request_log_dir) / f"prometheus-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or `localhost`); names are not resolved."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    from workbench.core.errors import ConfigError

    if args.workers < 1:
        raise ConfigError(f"--workers must be 1 or more, not {args.workers}")
    if args.max_body_bytes < 1:
        raise ConfigError(f"--max-body-bytes must be 1 or more, not {args.max_body_bytes}")
    if args.job_concurrency < 1:
        raise ConfigError(f"--job-concurrency must be 1 or more, not {args.job_concurrency}")
    settings = ServeSettings(
        bundle=str(Path(args.bundle).resolve()),
        root=str(Path(args.root).resolve()),
        index=str(Path(args.index).resolve()) if args.index else None,
        max_body_bytes=args.max_body_bytes,
        trace=args.trace,
        tracking_uri=args.tracking_uri,
        api_key_env=args.api_key_env,
        limits=str(Path(args.limits).resolve()) if args.limits else None,
        redis=args.redis,
        limiter_failure=args.limiter_failure,
        keys=str(Path(args.keys).resolve()) if args.keys else None,
        jwt_secret_env=args.jwt_secret_env,
        jwt_public_key=str(Path(args.jwt_public_key).resolve()) if args.jwt_public_key else None,
        jwt_issuer=args.jwt_issuer,
        jwt_audience=args.jwt_audience,
        jwt_team_claim=args.jwt_team_claim,
        broker=args.broker,
        callback_allow=args.callback_allow,
        job_concurrency=args.job_concurrency,
    )
    # Auth is checked before the bundle: a bad option fails fast, and no open port without it.
    if settings.gateway() is None and not is_loopback(args.host):
        raise ConfigError(
            f"--host {args.host} is not loopback and no auth is configured: "
            "pass --keys, --jwt-secret-env, --jwt-public-key or --api-key-env (or serve on 127.0.0.1)"
        )
    settings.limiter()  # a bad limits file fails before any socket opens
    bundle = _open(settings, verify=True)
    settings.digest = bundle.digest
    for line in bundle.environment_drift():
        print(f"warning: environment differs from the bundle's: {line}", file=sys.stderr)
    bundle.check_models()
    import uvicorn

    where = f"http://{args.host}:{args.port}"
    print(
        f"serving {bundle.config.name} (bundle {bundle.digest[:12]}) on {where} with {args.workers} worker(s); "
        f"/readyz turns 200 once the golden set passes",
        flush=True,
    )
    if args.workers == 1:
        uvicorn.run(build_app(settings, bundle), host=args.host, port=args.port, log_level=args.log_level)
        return 0
    folder = _multiprocess_metrics(bundle)
    os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))
    try:
        uvicorn.run(
            "workbench.serve.command:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0
