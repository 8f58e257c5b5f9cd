import AMQPProtocol
import Testing

@testable import Broker

@Suite struct TopicPatternTests {
    @Test func literalWords() {
        #expect(TopicPattern("a.b.c").matches("a.b.c"))
        #expect(!TopicPattern("a.b.c").matches("a.b"))
        #expect(!TopicPattern("a.b").matches("a.b.c"))
    }

    @Test func starMatchesExactlyOneWord() {
        #expect(TopicPattern("a.*.c").matches("a.b.c"))
        #expect(!TopicPattern("a.*.c").matches("a.c"))
        #expect(!TopicPattern("a.*").matches("a.b.c"))
        #expect(!TopicPattern("*").matches(""))  // an empty key has no words, as in RabbitMQ
        #expect(TopicPattern("").matches(""))
        #expect(TopicPattern("a.*").matches("a."))
    }

    @Test func hashMatchesZeroOrMoreWords() {
        #expect(TopicPattern("#").matches(""))
        #expect(TopicPattern("#").matches("a.b.c"))
        #expect(TopicPattern("a.#").matches("a"))
        #expect(TopicPattern("a.#").matches("a.b.c"))
        #expect(TopicPattern("#.c").matches("c"))
        #expect(TopicPattern("a.#.c").matches("a.c"))
        #expect(TopicPattern("a.#.c").matches("a.x.y.c"))
        #expect(!TopicPattern("a.#.c").matches("a.x.y"))
        #expect(TopicPattern("#.#").matches("a"))
        #expect(TopicPattern("a.#.#.b").matches("a.b"))
        #expect(TopicPattern("#.*").matches("a.b"))
        #expect(!TopicPattern("#.*").matches(""))
        #expect(TopicPattern("*.#.*").matches("a.b"))
        #expect(!TopicPattern("*.#.*").matches("a"))
    }
}

@Suite struct HeadersMatchTests {
    let headers: FieldTable = ["format": .string("pdf"), "type": .string("report"), "pages": .int32(3)]

    @Test func allRequiresEveryKey() {
        #expect(HeadersMatch.matches(binding: ["x-match": .string("all"), "format": .string("pdf"), "type": .string("report")], headers: headers))
        #expect(!HeadersMatch.matches(binding: ["x-match": .string("all"), "format": .string("pdf"), "type": .string("log")], headers: headers))
        #expect(HeadersMatch.matches(binding: ["format": .string("pdf")], headers: headers))  // all is the default
    }

    @Test func anyRequiresOneKey() {
        #expect(HeadersMatch.matches(binding: ["x-match": .string("any"), "format": .string("zip"), "type": .string("report")], headers: headers))
        #expect(!HeadersMatch.matches(binding: ["x-match": .string("any"), "format": .string("zip")], headers: headers))
        #expect(!HeadersMatch.matches(binding: ["x-match": .string("any"), "format": .string("pdf")], headers: nil))
    }

    @Test func xKeysAreIgnoredUnlessWithX() {
        let withX: FieldTable = ["x-tenant": .string("a")]
        #expect(HeadersMatch.matches(binding: ["x-tenant": .string("b")], headers: withX))
        #expect(!HeadersMatch.matches(binding: ["x-match": .string("all-with-x"), "x-tenant": .string("b")], headers: withX))
        #expect(HeadersMatch.matches(binding: ["x-match": .string("any-with-x"), "x-tenant": .string("a")], headers: withX))
    }

    @Test func voidMatchesPresence() {
        #expect(HeadersMatch.matches(binding: ["pages": .void], headers: headers))
        #expect(!HeadersMatch.matches(binding: ["missing": .void], headers: headers))
    }
}

@Suite struct MessageBufferTests {
    func message(_ sequence: UInt64) -> QueuedMessage {
        QueuedMessage(message: Message(exchange: "", routingKey: "", properties: BasicProperties(), body: .init()), sequence: sequence, redelivered: false)
    }

    @Test func requeuedMessagesReturnToTheirPosition() {
        var buffer = MessageBuffer()
        for sequence in 0..<5 { buffer.append(message(UInt64(sequence))) }
        let first = buffer.popFirst()!, second = buffer.popFirst()!, third = buffer.popFirst()!
        buffer.requeue([third, first])
        #expect(buffer.popFirst()?.sequence == 0)
        buffer.requeue([second])
        #expect(buffer.count == 4)
        #expect((0..<4).compactMap { _ in buffer.popFirst()?.sequence } == [1, 2, 3, 4])
        #expect(buffer.popFirst() == nil)
    }

    @Test func requeueMergesWhenThereIsNoRoomBeforeTheHead() {
        var buffer = MessageBuffer()
        buffer.append(message(5))
        buffer.requeue([message(7), message(1)])
        #expect((0..<3).compactMap { _ in buffer.popFirst()?.sequence } == [1, 5, 7])
    }
}

@Suite struct PasswordHashingTests {
    // Computed with: s = bytes([0x90,0x8d,0xc6,0x0a]); base64(s + sha256(s + b"secret"))
    let rabbitHash = "kI3GCqG+cq65rBQ9tiUUCREygKhmilKrZEWKSz+H0FJ1fk4/"

    @Test func verifiesRabbitMQHash() {
        #expect(PasswordHashing.verify(password: "secret", against: rabbitHash))
        #expect(!PasswordHashing.verify(password: "Secret", against: rabbitHash))
        #expect(!PasswordHashing.verify(password: "secret", against: "not base64!"))
    }

    @Test func hashesWithTheSameScheme() {
        #expect(PasswordHashing.hash(password: "secret", salt: [0x90, 0x8D, 0xC6, 0x0A]) == rabbitHash)
        let fresh = PasswordHashing.hash(password: "pw")
        #expect(PasswordHashing.verify(password: "pw", against: fresh))
    }
}
