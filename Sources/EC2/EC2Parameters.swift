/// The parameters of one Query API call, in order, flattened as EC2 wants lists and
/// structures: `InstanceId.1`, `Filter.2.Value.1`, `TagSpecification.1.Tag.3.Key`.
public struct EC2Parameters: Sendable, Equatable {
    public private(set) var fields: [SigV4Request.Field] = []

    public init() {}

    public mutating func add(_ name: String, _ value: String?) {
        guard let value else { return }
        self.fields.append(.init(name, value))
    }

    public mutating func add(_ name: String, _ value: Int?) {
        self.add(name, value.map(String.init))
    }

    /// `NAME.1=a`, `NAME.2=b`...
    public mutating func addList(_ name: String, _ values: [String]) {
        for (index, value) in values.enumerated() {
            self.add("\(name).\(index + 1)", value)
        }
    }

    /// `Filter.N.Name` and `Filter.N.Value.M`.
    public mutating func addFilters(_ filters: [EC2Filter]) {
        for (index, filter) in filters.enumerated() {
            self.add("Filter.\(index + 1).Name", filter.name)
            self.addList("Filter.\(index + 1).Value", filter.values)
        }
    }

    /// `PREFIX.N.Key` and `PREFIX.N.Value`, keys sorted so a call's body is repeatable.
    public mutating func addTags(_ prefix: String, _ tags: [String: String]) {
        for (index, key) in tags.keys.sorted().enumerated() {
            self.add("\(prefix).\(index + 1).Key", key)
            self.add("\(prefix).\(index + 1).Value", tags[key]!)
        }
    }

    /// The `application/x-www-form-urlencoded` body: `Action` and `Version` first, then
    /// the parameters, all percent-encoded as SigV4 encodes (so `+` and `/` of base64 user
    /// data are escaped, and a space is `%20`).
    func formBody(action: String, version: String) -> String {
        ([SigV4Request.Field("Action", action), .init("Version", version)] + self.fields)
            .map { "\(SigV4Signer.percentEncode($0.name))=\(SigV4Signer.percentEncode($0.value))" }
            .joined(separator: "&")
    }
}
