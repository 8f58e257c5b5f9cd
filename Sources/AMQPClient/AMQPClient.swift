// The async AMQP 0-9-1 client lives here.
