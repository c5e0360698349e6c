"""The one wiring function: every entrypoint and every test builds the system here."""
from __future__ import annotations

from dataclasses import dataclass

from ledger.application import Ledger
from ledger.config import Settings, load_settings
from ledger.log import configure_logging
from ledger.policy import PolicyBook


@dataclass
class System:
    settings: Settings
    policies: PolicyBook
    ledger: Ledger

    def close(self) -> None:
        self.ledger.close()


def bootstrap(settings: Settings | None = None, *, policies: PolicyBook | None = None) -> System:
    """Build the ledger on the store the settings name (SQLite by default)."""
    configure_logging()
    settings = settings or load_settings()
    policies = policies or PolicyBook.load(settings.policy_dir)
    ledger = Ledger(settings.event_store_env(), policies=policies, id_key=settings.id_key)
    return System(settings=settings, policies=policies, ledger=ledger)
