"""schemathesis hooks for scripts/schemathesis.sh.

positive_data_acceptance_except_references replaces schemathesis's positive_data_acceptance: a
request body valid by the OpenAPI document must be accepted (2xx), except that the sensor API may
answer 422 for events whose references depend on what was stored before or earlier in the batch
(an unknown session or file, a session or file discovered twice, a file named with another
session, a pair scored twice or rescored unscored): the cases the 422 description names, which no
schema can express. Every other refusal of valid data fails, with the API's messages.
"""

import re

import schemathesis

# The messages of `check` in src/threats/ingest.rs, the only state-dependent refusals.
STATE_DEPENDENT = re.compile(
    r"^(?:unknown session .*"
    r"|unknown file .*: send FileDiscovered first"
    r"|(?:session|file) .* was already discovered"
    r"|file .* belongs to session .*, not .*"
    r"|file .* was already scored by .* for .*: send FileRescored"
    r"|rescoring an unscored pair: .*)$",
    re.DOTALL,
)

# What schemathesis's own check allows for valid data, less its 5xx (not_a_server_error's
# concern) and 404 (the API has no resource to miss).
ACCEPTABLE = {401, 403, 409, 429}


@schemathesis.check
def positive_data_acceptance_except_references(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if 200 <= status < 300 or status in ACCEPTABLE:
        return None
    if status == 422:
        try:
            errors = response.json()["errors"]
            messages = [e["message"] for e in errors]
        except (ValueError, KeyError, TypeError):
            messages = None
        if messages and all(STATE_DEPENDENT.match(m) for m in messages):
            return None
    raise AssertionError(
        f"Valid data should have been accepted (or refused with 422 for state-dependent "
        f"references only), got {status}: {response.text[:2000]}"
    )
