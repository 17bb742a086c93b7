"""URL canonicalisation: one article, one URL, hence one id.

Written here rather than taken from ``courlan`` because ids depend on it and
must never change behind our back with a library upgrade; the rules are few:

* scheme and host lower-case, default port dropped, IDN hosts kept as given
  (lower-cased), empty path becomes ``/``;
* the fragment is dropped;
* tracking parameters are dropped (``utm_*``, ``fbclid``, ``gclid`` ... see
  :data:`TRACKING_PARAMS`), the remaining ones are sorted (stable order);
* percent-encoding is normalised, so ``/أخبار`` and ``/%d8%a3...`` are one path.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "at_", "hsa_", "__hs", "_hs")
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "msclkid", "yclid", "twclid", "igshid", "mc_cid", "mc_eid",
        "_ga", "_gl", "ref", "ref_src", "ref_url", "cmpid", "ocid", "spm", "s_cid", "sr_share", "wt.mc_id",
        "xtor", "ito", "ncid",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters left unescaped in a path: RFC 3986 unreserved plus sub-delims, ':' '@' '/'.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def _is_tracking(name: str) -> bool:
    key = name.lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def canonical_url(url: str | None) -> str | None:
    """The canonical form of ``url``; None for None/blank or a URL that is not http(s)."""
    if not url or not url.strip():
        return None
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        return None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    # %2F stays encoded (it is not a path separator); everything else is decoded and re-encoded uniformly.
    segments = [quote(unquote(seg), safe=_PATH_SAFE.replace("/", "")) for seg in (parts.path or "/").split("/")]
    path = "/".join(segments) or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    query.sort()
    return urlunsplit((scheme, netloc, path, urlencode(query, quote_via=quote), ""))


def host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{(parts.hostname or '').lower()}:{parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)}"
