import Foundation
import Hummingbird
import NIOCore

/// Reads a route's small JSON body: at most `APIResponse.bodyLimit` bytes (413 beyond), an object of the given
/// shape (400 naming what is wrong otherwise), or nothing at all when the route takes an optional body. The
/// media type is not required: the runbook's own `curl -d '{"retentionDays": 7}'` sends it as a form.
enum RequestBody {
    static func decode<T: APIInput>(_ type: T.Type, from request: Request, optional: Bool) async throws -> T? {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: APIResponse.bodyLimit)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "the request body is larger than \(APIResponse.bodyLimit / 1024) KiB")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "the request body is larger than \(APIResponse.bodyLimit / 1024) KiB")
        }
        let data = Data(buffer: buffer)
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
            if optional { return nil }
            throw APIError(.badRequest, "the request body is empty: send a JSON object")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw APIError(.badRequest, "the request body is not a JSON object")
        }
        // A field named twice keeps one value, the first here, the last in most parsers (a proxy's, an audit
        // log's): `{"retentionDays": 1, "retentionDays": 30}` would be read as 30 there and applied as 1 here.
        let keys = topLevelKeys(Array(data))
        var seen = Set<String>()
        for key in keys where !seen.insert(key).inserted {
            throw APIError(.badRequest, "\(LogText.clean(key, limit: 60)) is given more than once")
        }
        guard keys.count == object.count else {
            throw APIError(.badRequest, "the request body is not understood: send a JSON object in UTF-8")
        }
        // A misspelt field would be ignored and its default taken (`{"retentionDay": 90}` cleaning up with 30
        // days): refused instead, as is a field given as null.
        if let unknown = object.keys.sorted().first(where: { !T.fields.contains($0) }) {
            throw APIError(
                .badRequest,
                "unknown field \(LogText.clean(unknown, limit: 60)) (this route takes: \(T.fields.joined(separator: ", ")))")
        }
        if let null = object.keys.sorted().first(where: { object[$0] is NSNull }) {
            throw APIError(.badRequest, "\(null) is null: leave it out or give it a value")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            throw APIError(.badRequest, "\(field(context)) has the wrong type")
        } catch DecodingError.keyNotFound(let key, _) {
            throw APIError(.badRequest, "\(key.stringValue) is missing")
        } catch DecodingError.dataCorrupted(let context) {
            throw APIError(.badRequest, "\(field(context)) is not valid")
        } catch {
            throw APIError(.badRequest, "the request body is not understood")
        }
    }

    /// The names of an object's own members, in order and decoded (`"retention\u0044ays"` is `retentionDays`),
    /// duplicates kept: the bytes of a body JSONSerialization has already read as an object. A name that cannot
    /// be read is left out, which the caller sees as a count that differs from the object's.
    static func topLevelKeys(_ bytes: [UInt8]) -> [String] {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        var keys: [String] = []
        var depth = 0
        var expectingName = false
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case quote:
                let start = index
                index += 1
                while index < bytes.count, bytes[index] != quote {
                    index += bytes[index] == backslash ? 2 : 1
                }
                if depth == 1, expectingName, index < bytes.count {
                    let token = Data(bytes[start...index])
                    let name = try? JSONSerialization.jsonObject(with: token, options: .fragmentsAllowed)
                    if let name = name as? String { keys.append(name) }
                    expectingName = false
                }
            case UInt8(ascii: "{"):
                depth += 1
                if depth == 1 { expectingName = true }
            case UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                if depth == 1 { expectingName = true }
            default:
                break
            }
            index += 1
        }
        return keys
    }

    private static func field(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return path.isEmpty ? "the body" : path
    }
}

/// A route's JSON body: its fields, the only ones accepted.
protocol APIInput: Decodable {
    static var fields: [String] { get }
}
