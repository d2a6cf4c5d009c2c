from tests.payment.orders.helpers import fakes, published, served_fakes, sites  # noqa: F401  (fixtures)
