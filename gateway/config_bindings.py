"""The config file's `[[bindings]]` applied to the store at start-up."""

import logging

from gateway.config import Settings
from gateway.store import Database
from gateway.store import users as user_store
from gateway.store.readings import assign_device_readings

_LOGGER = logging.getLogger(__name__)


def apply_config_bindings(db: Database, settings: Settings) -> None:
    """Make the store's bindings include the config's; give matching readings to their user."""
    for binding in settings.bindings:
        if binding.label:
            user_store.upsert_user(db, binding.user_id, binding.label)
        user_store.bind(
            db,
            binding.device,
            binding.user_id,
            device_user=binding.device_user,
            provider=binding.provider,
        )
        assigned = assign_device_readings(
            db,
            binding.device,
            binding.user_id,
            zone=settings.zone,
            device_user=binding.device_user,
            provider=binding.provider,
        )
        if assigned:
            _LOGGER.info("%s: %d stored reading(s) assigned from config", binding.device, assigned)
