// The coordinator lives here: deployables, resolver, providers, state.
