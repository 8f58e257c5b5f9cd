import ArgumentParser

extension Conductor {
    /// The subcommands, in the order `--help` lists them. Add new ones here.
    static let allSubcommands: [any ParsableCommand.Type] = [
        BrokerCommand.self,
        PerfTestCommand.self,
        AgentCommand.self,
        FactsCommand.self,
        LockCommand.self, SignalCommand.self, WaitCommand.self,
        RemoteRunCommand.self,
        AgentBenchCommand.self,
        ValidateCommand.self,
        LaunchCommand.self,
        StatusCommand.self,
        FwdCommand.self,
        TerminateCommand.self,
        ServeCommand.self,
        SigningKeyCommand.self,
    ]
}
