import Agent
import ArgumentParser
import Foundation
import MeshClient

/// `conductor signing-key`: the public half of the key that signs jobs and run requests.
struct SigningKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signing-key",
        abstract: "Print the coordinator's public signing key, for agents' --trusted-key.",
        discussion: """
            Jobs and run requests are signed (Ed25519) with the key in \
            <state-dir>/keys/requests.ed25519 (mode 0600), made on first use by launch, serve, \
            fwd or this command. Agents that conductor launch starts are given it; start agents \
            of your own (provider: agents, other machines) with \
            `conductor agent --trusted-key $(conductor signing-key)` so they refuse requests \
            that are unsigned, altered, expired, replayed or signed by another key. \
            `conductor run` signs with it when it exists. See docs/agent.md.
            """
    )

    @OptionGroup var state: StateOptions

    @Flag(name: .long, help: "Print {\"public_key\": ..., \"path\": ...} as JSON.")
    var json = false

    func run() throws {
        let path = RequestSigner.path(stateDirectory: self.state.directory)
        let signer: RequestSigner
        do {
            signer = try RequestSigner.loadOrCreate(at: path)
        } catch {
            FileHandle.standardError.write(Data("conductor signing-key: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if self.json {
            let object = ["public_key": signer.publicKey.description, "path": path]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(signer.publicKey.description)
        }
    }
}
