"""`verb.extensions`: the documented path of permessage-deflate negotiation (RFC 7692); it
lives in `verb.core.extensions`."""

from verb.core.extensions import *  # noqa: F401,F403
from verb.core.extensions import __all__  # noqa: F401
