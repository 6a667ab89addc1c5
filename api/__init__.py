"""The REST API (/api/v1/): django-ninja routers over the review and prompt-library services.

What other parts of the project build on:

- `api.problems`: `ApiProblem` (raise it to refuse with RFC 9457 problem details), `Problem` (its
  schema), `problem_from_error` (a service's refusal as a problem);
- `api.idempotency`: `IdempotencyKey` (the header parameter) and `idempotent` (run a creating POST
  once per key);
- `api.auth`: `actor` (the calling user), `AUTH`;
- `api.responses`: `ERRORS_READ`, `ERRORS_WRITE`, `errors(...)` (the error answers to declare);
- `api.routers.ROUTERS`: the list a new resource's router is added to.
"""
