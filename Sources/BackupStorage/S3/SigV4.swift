import BackupInterop
import Foundation

/// AWS credentials. `description` never shows the secret or the token.
public struct AWSCredentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let accessKeyID: String
    public let secretAccessKey: String
    public let sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// The access key ID (an identifier AWS itself prints in every Authorization header) and whether a session
    /// token is present; never the secret or the token.
    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>, sessionToken: "
            + (sessionToken == nil ? "none)" : "<redacted>)")
    }

    /// `String(reflecting:)` and `debugPrint` would otherwise print every stored property.
    public var debugDescription: String { description }

    /// `dump` and debuggers walk the mirror; this one holds no secret either.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "accessKeyID": accessKeyID, "secretAccessKey": "<redacted>",
                "sessionToken": sessionToken == nil ? "none" : "<redacted>",
            ])
    }
}

/// AWS Signature Version 4 for request headers (`Authorization: AWS4-HMAC-SHA256 …`), as the S3 documentation
/// "Signature Calculations for the Authorization Header: Transferring Payload in a Single Chunk" describes it.
///
/// Written by hand because nothing maintained is at hand: no AWS SDK for Swift is available offline, and
/// libcurl's `CURLOPT_AWS_SIGV4` in Debian 12's libcurl 7.88 mis-signs query strings (curl issues #8107,
/// parameters without a value such as `?uploads`; #9717, unsorted parameters) and hides the canonical request,
/// which is what one needs to see when S3 answers `SignatureDoesNotMatch`. Tested against AWS's published
/// examples (`SigV4Tests`). HMAC and SHA-256 come from OpenSSL through BackupInterop.
///
/// The path is used exactly as given, for every service: this signer does not normalize it or encode it a
/// second time (S3 wants neither; other services would want both, which callers of this type never need).
public struct SigV4Signer: Sendable {
    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    public init(credentials: AWSCredentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// Signs one request. `path` is the canonical, already percent-encoded absolute path ("/bucket/key" or "/key");
    /// `query` the decoded query parameters (encoded and sorted here); `headers` the headers that will be sent
    /// (Host must be among them; all given headers are signed, names lowercased, values trimmed with inner runs of
    /// spaces collapsed). `payloadHash` is the hex sha256 of the body or "UNSIGNED-PAYLOAD".
    /// Returns the headers to ADD to the request: "Authorization", "x-amz-date", and, when the service is "s3",
    /// "x-amz-content-sha256"; plus "x-amz-security-token" when the credentials carry a session token (which is
    /// then also signed). When the caller already put x-amz-date / x-amz-content-sha256 in `headers`, use those
    /// and don't return them again.
    public func sign(
        method: String, path: String, query: [(String, String)], headers: [(String, String)], payloadHash: String,
        date: Date
    ) -> [(String, String)] {
        precondition(Self.value(of: "host", in: headers) != nil, "SigV4: the Host header must be among the headers")
        var added: [(String, String)] = []

        let timestamp: String
        if let given = Self.value(of: "x-amz-date", in: headers) {
            precondition(Self.isTimestamp(given), "SigV4: x-amz-date \(given) is not of the form yyyyMMdd'T'HHmmss'Z'")
            timestamp = given
        } else {
            timestamp = Self.timestamp(of: date)
            added.append(("x-amz-date", timestamp))
        }
        if service == "s3" {
            if let given = Self.value(of: "x-amz-content-sha256", in: headers) {
                // S3 checks the header against the hash that was signed; two different values can never pass.
                precondition(
                    given == payloadHash, "SigV4: x-amz-content-sha256 \(given) is not payloadHash \(payloadHash)")
            } else {
                added.append(("x-amz-content-sha256", payloadHash))
            }
        }
        if let token = credentials.sessionToken, Self.value(of: "x-amz-security-token", in: headers) == nil {
            added.append(("x-amz-security-token", token))
        }

        let signed = headers + added
        let canonical = canonicalRequest(
            method: method, path: path, query: query, headers: signed, payloadHash: payloadHash)
        let day = String(timestamp.prefix(8))
        let toSign = stringToSign(canonicalRequest: canonical, timestamp: timestamp)
        let code = HMACSHA256.authenticationCode(key: signingKey(day: day), message: Array(toSign.utf8))
        let signature = Hex.encode(code)
        let names = Self.canonicalHeaders(signed).map(\.name).joined(separator: ";")
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope(day: day)), "
            + "SignedHeaders=\(names), Signature=\(signature)"
        return [("Authorization", authorization)] + added
    }

    /// RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is %XX (uppercase hex),
    /// and "/" is kept when `keepSlash` (object keys in paths).
    public static func encode(_ text: String, keepSlash: Bool) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The intermediate strings, exposed for tests and for debugging a signature mismatch.
    /// `canonicalRequest` covers exactly the `headers` given (`sign` passes them together with the ones it adds).
    public func canonicalRequest(
        method: String, path: String, query: [(String, String)], headers: [(String, String)], payloadHash: String
    ) -> String {
        precondition(path.hasPrefix("/"), "SigV4: the canonical path must be absolute, got \(path)")
        let canonicalQuery = query.map { (Self.encode($0.0, keepSlash: false), Self.encode($0.1, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? Self.precedes($0.0, $1.0) : Self.precedes($0.1, $1.1) }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
        let canonical = Self.canonicalHeaders(headers)
        let headerLines = canonical.map { "\($0.name):\($0.value)\n" }.joined()
        let signedNames = canonical.map(\.name).joined(separator: ";")
        return [method, path, canonicalQuery, headerLines, signedNames, payloadHash].joined(separator: "\n")
    }

    /// The string to sign for a canonical request made at `date` (whole seconds, UTC).
    public func stringToSign(canonicalRequest: String, date: Date) -> String {
        stringToSign(canonicalRequest: canonicalRequest, timestamp: Self.timestamp(of: date))
    }

    // MARK: - The parts

    private func stringToSign(canonicalRequest: String, timestamp: String) -> String {
        let day = String(timestamp.prefix(8))
        let hash = SHA256.hex(of: Array(canonicalRequest.utf8))
        return ["AWS4-HMAC-SHA256", timestamp, scope(day: day), hash].joined(separator: "\n")
    }

    private func scope(day: String) -> String { "\(day)/\(region)/\(service)/aws4_request" }

    /// `AWS4`+secret → day → region → service → "aws4_request", each an HMAC keyed by the previous one.
    private func signingKey(day: String) -> [UInt8] {
        var key = Array("AWS4\(credentials.secretAccessKey)".utf8)
        for part in [day, region, service, "aws4_request"] {
            key = HMACSHA256.authenticationCode(key: key, message: Array(part.utf8))
        }
        return key
    }

    /// Lowercased names in byte order, each with its values trimmed, inner runs of spaces collapsed, and the
    /// values of repeated names joined by "," in the order given.
    private static func canonicalHeaders(_ headers: [(String, String)]) -> [(name: String, value: String)] {
        var order: [String] = []
        var values: [String: [String]] = [:]
        for (name, value) in headers {
            let lowered = name.lowercased()
            if values[lowered] == nil { order.append(lowered) }
            values[lowered, default: []].append(trimmed(value))
        }
        return order.sorted(by: precedes).map { (name: $0, value: values[$0, default: []].joined(separator: ",")) }
    }

    private static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    /// Byte order, which SigV4 asks for ("by character code point"); the strings compared here are ASCII.
    private static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    private static func value(of name: String, in headers: [(String, String)]) -> String? {
        headers.first { $0.0.lowercased() == name }?.1
    }

    private static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC, from the Gregorian calendar's fields rather than a DateFormatter, so no
    /// locale or user setting can change a digit.
    private static func timestamp(of date: Date) -> String {
        let parts = utc.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func digits(_ value: Int?, _ width: Int) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return digits(parts.year, 4) + digits(parts.month, 2) + digits(parts.day, 2) + "T" + digits(parts.hour, 2)
            + digits(parts.minute, 2) + digits(parts.second, 2) + "Z"
    }

    private static func isTimestamp(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return false }
        return bytes.enumerated().allSatisfy { index, byte in
            index == 8 || index == 15 || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        }
    }
}
