import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// An element of an EC2 answer: its local name, its text, its children. EC2's answers are
/// small, so the whole document is read into these and then picked apart.
public struct EC2XMLElement: Sendable, Equatable {
    public var name: String
    public var text: String
    public var children: [EC2XMLElement]

    public init(name: String, text: String = "", children: [EC2XMLElement] = []) {
        self.name = name
        self.text = text
        self.children = children
    }

    /// The first child named `name`.
    public func child(_ name: String) -> EC2XMLElement? {
        self.children.first { $0.name == name }
    }

    /// The element at `path` below this one (`instanceState`, `name`).
    public func child(_ path: String...) -> EC2XMLElement? {
        var element: EC2XMLElement? = self
        for name in path { element = element?.child(name) }
        return element
    }

    /// The text at `path`, nil when absent or empty (EC2 writes absent values both ways).
    public func string(_ path: String...) -> String? {
        var element: EC2XMLElement? = self
        for name in path { element = element?.child(name) }
        guard let text = element?.text, !text.isEmpty else { return nil }
        return text
    }

    /// The `<item>` children of the list at `path` (EC2's `fooSet` lists).
    public func items(_ path: String...) -> [EC2XMLElement] {
        var element: EC2XMLElement? = self
        for name in path { element = element?.child(name) }
        return element?.children.filter { $0.name == "item" } ?? []
    }

    /// Parses `bytes`; nil when they are not well-formed XML.
    public static func parse(_ bytes: [UInt8]) -> EC2XMLElement? {
        let builder = TreeBuilder()
        let parser = XMLParser(data: Data(bytes))
        parser.delegate = builder
        parser.shouldProcessNamespaces = true
        guard parser.parse(), let root = builder.root else { return nil }
        return root
    }
}

/// XMLParser's delegate: a stack of open elements, the finished root at the end.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var stack: [EC2XMLElement] = []
    var root: EC2XMLElement?

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        self.stack.append(EC2XMLElement(name: elementName))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !self.stack.isEmpty else { return }
        self.stack[self.stack.count - 1].text += string
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        guard var element = self.stack.popLast() else { return }
        // Whitespace between child elements, or alone in an empty one, is layout, not a
        // value; a value's own spaces are kept.
        if !element.children.isEmpty || element.text.allSatisfy(\.isWhitespace) {
            element.text = element.text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if self.stack.isEmpty {
            self.root = element
        } else {
            self.stack[self.stack.count - 1].children.append(element)
        }
    }
}
