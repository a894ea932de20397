"""Request dependencies: the store session, the caller, role checks, and the caller as an audit actor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from alerts.audit import Actor
from alerts.db import Store
from api.auth import AuthError, Principal, authenticate
from api.errors import ApiError, forbidden
from api.request_id import client_address, request_id_of

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer swk_…`")


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_session(store: Annotated[Store, Depends(get_store)]) -> Iterator[Session]:
    with store.transaction() as session:
        yield session


# scope="function": the transaction commits when the route returns, before the response is sent. With the
# default ("request") the commit ran after the answer had gone, so a 2xx could be followed by a failed commit
# (the change and its audit event lost) that the client never heard of.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_principal(
    store: Annotated[Store, Depends(get_store)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiError(
            401,
            "unauthorized",
            "an API key is required: Authorization: Bearer swk_…",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        with store.transaction() as session:
            return authenticate(session, credentials.credentials)
    except AuthError as exc:
        raise ApiError(401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_actor(request: Request, principal: PrincipalDep) -> Actor:
    """The caller as the audit trail names them: the key's id and role, the request id, the client address.
    (The principal is the one the route's role check got: FastAPI resolves it once per request.)"""
    return Actor(principal.key_id, principal.role, request_id_of(request), client_address(request))


ActorDep = Annotated[Actor, Depends(get_actor)]


def no_nul_in_url(request: Request) -> None:
    """422 for a NUL character in a path or query parameter: PostgreSQL cannot compare or store one
    (a 500 otherwise). No id, cell or cursor this API makes contains one."""
    values = [*request.path_params.values(), *request.query_params.keys(), *request.query_params.values()]
    if any("\x00" in str(value) for value in values):
        raise ApiError(422, "invalid_request", "the URL must not contain NUL (%00) characters")


def require(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency that admits only these roles (403 for the others)."""

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise forbidden(f"a {principal.role} key may not do this; it needs {' or '.join(roles)}")
        return principal

    return check


Operator = Annotated[Principal, Depends(require("operator"))]
Staff = Annotated[Principal, Depends(require("operator", "supervisor", "grid_worker"))]
Reader = Annotated[Principal, Depends(require("operator", "supervisor", "grid_worker", "family"))]
Ingestor = Annotated[Principal, Depends(require("operator", "device"))]
Reporter = Annotated[Principal, Depends(require("operator", "device", "grid_worker", "supervisor"))]
