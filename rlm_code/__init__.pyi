"""Types of the names `rlm_code` re-exports lazily (see `__init__.py`)."""

from rlm_code.core.config import ConfigManager as ConfigManager
from rlm_code.core.exceptions import AuthenticationError as AuthenticationError
from rlm_code.core.exceptions import BudgetExceededError as BudgetExceededError
from rlm_code.core.exceptions import ConfigError as ConfigError
from rlm_code.core.exceptions import ContentFilterError as ContentFilterError
from rlm_code.core.exceptions import ContextLengthExceededError as ContextLengthExceededError
from rlm_code.core.exceptions import InvalidAPIKeyFormatError as InvalidAPIKeyFormatError
from rlm_code.core.exceptions import InvalidInputError as InvalidInputError
from rlm_code.core.exceptions import MissingAPIKeyError as MissingAPIKeyError
from rlm_code.core.exceptions import ModelError as ModelError
from rlm_code.core.exceptions import ModelNotFoundError as ModelNotFoundError
from rlm_code.core.exceptions import ModelTimeoutError as ModelTimeoutError
from rlm_code.core.exceptions import NotConnectedError as NotConnectedError
from rlm_code.core.exceptions import ProviderConnectionError as ProviderConnectionError
from rlm_code.core.exceptions import ProviderError as ProviderError
from rlm_code.core.exceptions import ProviderNotFoundError as ProviderNotFoundError
from rlm_code.core.exceptions import RateLimitError as RateLimitError
from rlm_code.core.exceptions import ResponseFormatError as ResponseFormatError
from rlm_code.core.exceptions import RLMCodeError as RLMCodeError
from rlm_code.core.exceptions import SDKNotInstalledError as SDKNotInstalledError
from rlm_code.core.exceptions import UnsupportedParameterError as UnsupportedParameterError
from rlm_code.models.budget import Budget as Budget
from rlm_code.models.llm_connector import LLMConnector as LLMConnector
from rlm_code.models.profiles import ModelProfile as ModelProfile
from rlm_code.models.providers.registry import ProviderRegistry as ProviderRegistry
from rlm_code.models.routes import Route as Route
from rlm_code.models.streaming import AsyncResponseStream as AsyncResponseStream
from rlm_code.models.streaming import ResponseStream as ResponseStream
from rlm_code.models.types import Finished as Finished
from rlm_code.models.types import ReasoningDelta as ReasoningDelta
from rlm_code.models.types import Response as Response
from rlm_code.models.types import TextDelta as TextDelta
from rlm_code.models.types import ToolCall as ToolCall
from rlm_code.models.types import ToolCallDelta as ToolCallDelta
from rlm_code.models.types import ToolCallDone as ToolCallDone
from rlm_code.models.types import Usage as Usage
from rlm_code.models.types import UsageReport as UsageReport

__version__: str
__all__: list[str]
