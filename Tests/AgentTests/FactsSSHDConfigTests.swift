import Mesh
import Testing

@testable import Agent

@Suite("sshd_config ports")
struct SSHDConfigTests {
    private func ports(_ files: [String: String]) throws -> SSHDConfig {
        let tree = try FixtureTree(files)
        return SSHDConfig.load("etc/ssh/sshd_config", sources: FactSources(root: tree.root))
    }

    @Test func missingFileMeans22() throws {
        let config = try ports([:])
        #expect(config.port == 22)
        #expect(config.ports == [22])
        #expect(config.meshValue == ["port": 22, "ports": [22]])
    }

    @Test func noPortLineMeans22() throws {
        #expect(try ports(["etc/ssh/sshd_config": "# Port 2222\nPermitRootLogin no\n"]).ports == [22])
    }

    @Test func keywordIsCaseInsensitiveAndEqualsIsASeparator() throws {
        #expect(try ports(["etc/ssh/sshd_config": "  PORT 2201\nport=2202\nPort = 2203\n\tport\t2204 # why\n"]).ports == [2201, 2202, 2203, 2204])
    }

    @Test func commentsAndInvalidPortsAreIgnored() throws {
        let config = try ports(["etc/ssh/sshd_config": "#Port 1\n   # Port 2\nPort 70000\nPort abc\nPort 2022\nPortal 9\n"])
        #expect(config.ports == [2022])
    }

    @Test func multiplePortsKeepOrderAndTheFirstIsPort() throws {
        let config = try ports(["etc/ssh/sshd_config": "Port 443\nPort 22\nPort 443\n"])
        #expect(config.port == 443)
        #expect(config.ports == [443, 22])
        #expect(config.meshValue == ["port": 443, "ports": [443, 22]])
    }

    @Test func matchBlocksDoNotCount() throws {
        let config = try ports([
            "etc/ssh/sshd_config": """
                Port 2200
                Match User backup
                    Port 9999
                    ForceCommand internal-sftp
                Match all
                Port 2201
                """
        ])
        #expect(config.ports == [2200, 2201])
    }

    @Test func includeWithGlobIsExpandedInPlaceInNameOrder() throws {
        let config = try ports([
            "etc/ssh/sshd_config": "Include sshd_config.d/*.conf\nPort 2300\n",
            "etc/ssh/sshd_config.d/20-second.conf": "Port 2320\n",
            "etc/ssh/sshd_config.d/10-first.conf": "port 2310\n",
            "etc/ssh/sshd_config.d/ignored.txt": "Port 1\n",
        ])
        #expect(config.ports == [2310, 2320, 2300])
        #expect(config.port == 2310)
    }

    @Test func absoluteIncludeAndSeveralPatternsOnOneLine() throws {
        let config = try ports([
            "etc/ssh/sshd_config": "Include /etc/ssh/extra/a.conf   extra/b.conf\n",
            "etc/ssh/extra/a.conf": "Port 1001\n",
            "etc/ssh/extra/b.conf": "Port 1002\n",
        ])
        #expect(config.ports == [1001, 1002])
    }

    @Test func nestedIncludesAreFollowedAndCyclesAreBounded() throws {
        let config = try ports([
            "etc/ssh/sshd_config": "Include a.conf\n",
            "etc/ssh/a.conf": "Include b.conf\nPort 1111\n",
            "etc/ssh/b.conf": "Include a.conf\nPort 2222\n",
        ])
        // Terminates, and finds both ports despite the a -> b -> a cycle: the main file
        // and one file per include level down to the bound.
        #expect(config.ports == [2222, 1111])
        #expect(config.filesRead.count == SSHDConfig.maximumIncludeDepth + 1)
    }

    @Test func includeMatchingNothingIsNotAnError() throws {
        #expect(try ports(["etc/ssh/sshd_config": "Include sshd_config.d/*.conf\nPort 2400\n"]).ports == [2400])
    }

    @Test func matchInsideAnIncludedFileEndsWithThatFile() throws {
        let config = try ports([
            "etc/ssh/sshd_config": "Include m.conf\nPort 2500\n",
            "etc/ssh/m.conf": "Match Address 10.0.0.0/8\nPort 1\n",
        ])
        #expect(config.ports == [2500])
    }
}
