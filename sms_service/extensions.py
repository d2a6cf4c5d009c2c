"""The SMS service's process-wide objects, bound to the Flask app by ``create_app``."""

from shared.db import Database
from shared.tasks import new_celery
from shared.tenancy import KeyStore
from sms_service.models import SCOPES, ApiKey, Base, Tenant

db = Database(Base.metadata)
celery = new_celery("sms_service")
keys = KeyStore(db, Tenant, ApiKey, SCOPES)
