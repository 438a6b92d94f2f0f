"""Schemathesis hooks of .ci/schemathesis.sh (SCHEMATHESIS_HOOKS=hooks)."""

import json
import os

import schemathesis
from hypothesis import strategies as st

# The accounts prepare.py connected: [{"provider": ..., "account_id": ...}].
ACCOUNTS = json.loads(os.environ.get("INTEGRATIONS_ACCOUNTS") or "[]")
PROVIDERS = sorted({a["provider"] for a in ACCOUNTS})


@schemathesis.hook
def process_call_kwargs(context, case, kwargs):
    # The callback's answer is its 303; the page it points to is not this API.
    kwargs["allow_redirects"] = False


@schemathesis.hook
def before_generate_path_parameters(context, strategy):
    # Besides generated ids, the routes meet the registered platforms and real accounts.
    path = context.operation.path
    if ACCOUNTS and "{account_id}" in path:
        return st.one_of(strategy, st.sampled_from(ACCOUNTS))
    if PROVIDERS and "{provider}" in path:
        return st.one_of(strategy, st.sampled_from([{"provider": p} for p in PROVIDERS]))
    return strategy
