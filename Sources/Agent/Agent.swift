// The node agent lives here.
