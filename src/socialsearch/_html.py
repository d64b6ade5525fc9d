"""The Content-Security-Policy of the pages we write, with hashes of their own inline code.

A page is rendered with :data:`CSP_PLACEHOLDER` as the ``content`` of its
``<meta http-equiv="Content-Security-Policy">``; :func:`with_csp` then hashes the text of each
inline ``<script>`` and ``<style>`` element exactly as rendered and puts the policy in its place.
The browser runs that code and nothing else: no other script, no event-handler attribute, no
``style`` attribute, no request to any address, no form submission, no ``<base>``. Data for a
script travels in ``<script type="application/json">`` blocks, which are never executed.

Examples
--------
>>> page = with_csp('<meta http-equiv="Content-Security-Policy" content="' + CSP_PLACEHOLDER + '">'
...                 '<style>p{}</style><script>go()</script>')
>>> policy = page.split('content="')[1].split('"')[0]
>>> for part in policy.split("; ")[:4]:
...     print(part)
default-src 'none'
script-src 'sha256-5KYv+PUboo5h+0+YAtGRPbwv5d/QxzHslP4YGnUaxRw='
style-src 'sha256-gG2yISYereRMiG2lMXrbiUgi0Ubw9p7QCeWcroOvy9Y='
img-src 'none'
"""

from __future__ import annotations

import base64
import hashlib
import re

__all__ = ["CSP_PLACEHOLDER", "policy_for", "with_csp"]

CSP_PLACEHOLDER = "socialsearch-content-security-policy"
"""What a template writes where the policy goes; :func:`with_csp` replaces it."""

_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def _hashes(texts: list[str]) -> str:
    """``'sha256-...'`` source expressions of ``texts``, or ``'none'`` when there are none."""
    if not texts:
        return "'none'"
    digests = dict.fromkeys(
        "'sha256-" + base64.b64encode(hashlib.sha256(t.encode("utf-8")).digest()).decode("ascii") + "'"
        for t in texts
    )
    return " ".join(digests)


def policy_for(page: str) -> str:
    """The policy that lets exactly the page's inline scripts and style sheets run."""
    return "; ".join([
        "default-src 'none'",
        f"script-src {_hashes(_SCRIPT.findall(page))}",
        f"style-src {_hashes(_STYLE.findall(page))}",
        "img-src 'none'",
        "connect-src 'none'",
        "form-action 'none'",
        "base-uri 'none'",
    ])


def with_csp(page: str) -> str:
    """``page`` with its placeholder replaced by :func:`policy_for` ``(page)``.

    Raises ``ValueError`` when the page does not hold the placeholder exactly once (a template
    without its policy must not be written).
    """
    if page.count(CSP_PLACEHOLDER) != 1:
        raise ValueError("the page must hold the Content-Security-Policy placeholder exactly once")
    return page.replace(CSP_PLACEHOLDER, policy_for(page))
