"""The payment service's process-wide objects, bound to the Flask app by ``create_app``."""

from payment_service.models import SCOPES, ApiKey, Base, Tenant
from shared.db import Database
from shared.tasks import new_celery
from shared.tenancy import KeyStore

db = Database(Base.metadata)
celery = new_celery("payment_service")
keys = KeyStore(db, Tenant, ApiKey, SCOPES)
