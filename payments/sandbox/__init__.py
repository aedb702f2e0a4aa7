"""The sandbox payment service (contracts §4): the same HTTP API and signatures as
the payment team's service, a cashier page, and the signed `payment.result` event
published to the `payment` exchange. Served under /sandbox/pay/ by the web process."""
