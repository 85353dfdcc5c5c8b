import Foundation

/// A coding key that accepts any string; used to see which keys a JSON object really has.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?

    init(stringValue: String) {
        self.stringValue = stringValue
        self.intValue = nil
    }

    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

extension Decoder {
    /// Keys of the JSON object being decoded that are not among `keys`, sorted.
    func unknownKeys<Key: CodingKey & CaseIterable>(comparedTo keys: Key.Type) throws -> [String] {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        let allowed = Set(Key.allCases.map(\.stringValue))
        return container.allKeys.map(\.stringValue).filter { !allowed.contains($0) }.sorted()
    }

    /// Throws `DecodingError.dataCorrupted` when the JSON object has keys outside `keys`
    /// (the report schema sets `additionalProperties: false` everywhere).
    func rejectUnknownKeys<Key: CodingKey & CaseIterable>(_ keys: Key.Type) throws {
        let unknown = try unknownKeys(comparedTo: keys)
        guard unknown.isEmpty else {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: codingPath,
                debugDescription: "unknown key(s): \(unknown.joined(separator: ", "))"
            ))
        }
    }

    /// Throws `DecodingError.keyNotFound` for the first of `keys` the JSON object lacks
    /// (the report schema lists every key as required, nullable ones included).
    func requireKeys<Key: CodingKey & CaseIterable>(_ keys: Key.Type) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        for key in Key.allCases where !container.contains(AnyCodingKey(stringValue: key.stringValue)) {
            throw DecodingError.keyNotFound(key, DecodingError.Context(
                codingPath: codingPath,
                debugDescription: "required key \"\(key.stringValue)\" is missing"
            ))
        }
    }
}

extension KeyedDecodingContainer {
    /// Decodes a key that must be present but may be `null`.
    ///
    /// `decodeIfPresent` would also accept a missing key; the schema does not.
    func decodeNullable<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard contains(key) else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(
                codingPath: codingPath,
                debugDescription: "required key \"\(key.stringValue)\" is missing (write null for no value)"
            ))
        }
        if try decodeNil(forKey: key) {
            return nil
        }
        return try decode(T.self, forKey: key)
    }
}

extension KeyedEncodingContainer {
    /// Encodes `value`, or an explicit JSON `null` when it is nil, so that every key the schema
    /// requires is written.
    mutating func encodeOrNull<T: Encodable>(_ value: T?, forKey key: Key) throws {
        if let value {
            try encode(value, forKey: key)
        } else {
            try encodeNil(forKey: key)
        }
    }
}
