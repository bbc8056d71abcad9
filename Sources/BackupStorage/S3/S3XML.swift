import BackupCore
import Foundation

/// A parsed XML element of an S3 response. S3 answers are small, flat documents (a listing page is at most
/// 1,000 entries), so they are read whole into this tree.
///
/// Read by `S3XMLReader` below, not by Foundation's XMLParser: swift-corelibs-foundation's parser force-unwraps
/// each element name as UTF-8, and libxml2 hands it the invalid bytes of a name such as `<\u{FF}\u{F7}…`, so a
/// server's answer could trap the job (found by the s3-xml fuzz target); it also leaks an error object per
/// malformed document. S3's answers use a small part of XML, which the reader covers and tests hold it to
/// (moto's answers in the bucket tests, AWS's documented examples in S3XMLTests).
struct S3XMLElement {
    let name: String
    /// The element's own character data (not its children's), entities resolved.
    var text = ""
    var children: [S3XMLElement] = []

    init(name: String) { self.name = name }

    /// The first child of that name.
    subscript(_ child: String) -> S3XMLElement? { children.first { $0.name == child } }

    /// Every child of that name.
    func all(_ child: String) -> [S3XMLElement] { children.filter { $0.name == child } }

    /// The text of the first child of that name.
    func value(_ child: String) -> String? { self[child]?.text }

    /// Parses a document; nil when it is not one `S3XMLReader` reads (not XML, not UTF-8, a DTD, nested deeper
    /// than `S3XMLReader.maximumDepth`).
    static func parse(_ bytes: [UInt8]) -> S3XMLElement? {
        var reader = S3XMLReader(bytes)
        return reader.document()
    }

    /// Escapes text for an XML body we send.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// The XML of S3's answers: an optional UTF-8 byte order mark, XML declaration, comments and processing
/// instructions around one root element; elements with attributes (read and ignored), character data, the five
/// predefined entities, character references and CDATA sections. A document type declaration is refused, so
/// no entity is ever expanded. Works on bytes: every delimiter is ASCII, so the input, checked as UTF-8 first,
/// is only ever cut between characters. Iterative, with a depth limit: no input can exhaust the stack.
struct S3XMLReader {
    /// Far beyond S3's three or four levels.
    static let maximumDepth = 64

    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    private struct Malformed: Error {}

    mutating func document() -> S3XMLElement? {
        guard String(validating: bytes, as: UTF8.self) != nil else { return nil }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        do {
            try skipMisc()
            guard index < bytes.count else { return nil }
            let root = try element()
            try skipMisc()
            return index == bytes.count ? root : nil
        } catch {
            return nil
        }
    }

    // MARK: Structure

    /// Whitespace, comments and processing instructions (the XML declaration is one), as around the root.
    private mutating func skipMisc() throws {
        while index < bytes.count {
            if isSpace(bytes[index]) {
                index += 1
            } else if starts("<!--") {
                try skipComment()
            } else if starts("<?") {
                try skip(past: "?>")
            } else {
                return
            }
        }
    }

    /// The element at `index` (`<` first) with all it holds; its end tag is consumed.
    private mutating func element() throws -> S3XMLElement {
        // The open elements, innermost last, each with its character data so far.
        var stack: [S3XMLElement] = []
        var texts: [[UInt8]] = []
        let (root, empty) = try startTag()
        if empty { return root }
        stack.append(root)
        texts.append([])
        while !stack.isEmpty {
            guard index < bytes.count else { throw Malformed() }
            let byte = bytes[index]
            if byte == UInt8(ascii: "<") {
                if starts("</") {
                    index += 2
                    let name = try self.name()
                    skipSpaces()
                    try expect(">")
                    var closed = stack.removeLast()
                    guard closed.name == name else { throw Malformed() }
                    closed.text = String(decoding: texts.removeLast(), as: UTF8.self)
                    guard !stack.isEmpty else { return closed }
                    stack[stack.count - 1].children.append(closed)
                } else if starts("<!--") {
                    try skipComment()
                } else if starts("<![CDATA[") {
                    index += 9
                    let start = index
                    try skip(past: "]]>")
                    texts[texts.count - 1] += bytes[start..<(index - 3)]
                } else if starts("<?") {
                    try skip(past: "?>")
                } else if starts("<!") {
                    throw Malformed()  // a DTD or anything else S3 does not send
                } else {
                    guard stack.count < Self.maximumDepth else { throw Malformed() }
                    let (child, empty) = try startTag()
                    if empty {
                        stack[stack.count - 1].children.append(child)
                    } else {
                        stack.append(child)
                        texts.append([])
                    }
                }
            } else if byte == UInt8(ascii: "&") {
                texts[texts.count - 1] += try reference()
            } else if byte == UInt8(ascii: "\r") {
                // Line ends are normalised to LF, as XML requires of every reader.
                index += 1
                if index < bytes.count && bytes[index] == UInt8(ascii: "\n") { index += 1 }
                texts[texts.count - 1].append(UInt8(ascii: "\n"))
            } else {
                texts[texts.count - 1].append(byte)
                index += 1
            }
        }
        throw Malformed()
    }

    /// `<name attr="value" …>` or `<name …/>` at `index`: the element and whether it is empty.
    private mutating func startTag() throws -> (S3XMLElement, Bool) {
        try expect("<")
        let element = S3XMLElement(name: try name())
        while true {
            let hadSpace = skipSpaces()
            guard index < bytes.count else { throw Malformed() }
            if starts("/>") {
                index += 2
                return (element, true)
            }
            if bytes[index] == UInt8(ascii: ">") {
                index += 1
                return (element, false)
            }
            guard hadSpace else { throw Malformed() }
            _ = try name()
            skipSpaces()
            try expect("=")
            skipSpaces()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
                throw Malformed()
            }
            let quote = bytes[index]
            index += 1
            while index < bytes.count && bytes[index] != quote {
                guard bytes[index] != UInt8(ascii: "<") else { throw Malformed() }
                if bytes[index] == UInt8(ascii: "&") { _ = try reference() } else { index += 1 }
            }
            try expect(quote == UInt8(ascii: "'") ? "'" : "\"")
        }
    }

    /// A name: one or more bytes up to whitespace or a delimiter (XML's name rules are not checked further: a
    /// name is only compared with the ones S3 uses).
    private mutating func name() throws -> String {
        let start = index
        while index < bytes.count, !isSpace(bytes[index]), !Array("<>/=&'\"?!".utf8).contains(bytes[index]) {
            index += 1
        }
        guard index > start else { throw Malformed() }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` `&#NN;` `&#xHH;` at `index`, as UTF-8.
    private mutating func reference() throws -> [UInt8] {
        try expect("&")
        let start = index
        while index < bytes.count && bytes[index] != UInt8(ascii: ";") && index - start < 12 { index += 1 }
        guard index < bytes.count, bytes[index] == UInt8(ascii: ";") else { throw Malformed() }
        let body = String(decoding: bytes[start..<index], as: UTF8.self)
        index += 1
        switch body {
        case "amp": return Array("&".utf8)
        case "lt": return Array("<".utf8)
        case "gt": return Array(">".utf8)
        case "quot": return Array("\"".utf8)
        case "apos": return Array("'".utf8)
        default:
            let value: UInt32?
            if body.hasPrefix("#x") {
                value = UInt32(body.dropFirst(2), radix: 16)
            } else if body.hasPrefix("#") {
                value = UInt32(body.dropFirst(), radix: 10)
            } else {
                value = nil
            }
            // Digits only (UInt32's parser takes a sign), and a character XML allows: no NUL, no surrogate.
            guard let value, body.dropFirst(body.hasPrefix("#x") ? 2 : 1).allSatisfy(\.isHexDigit), value != 0,
                let scalar = Unicode.Scalar(value)
            else { throw Malformed() }
            return Array(String(Character(scalar)).utf8)
        }
    }

    private mutating func skipComment() throws {
        index += 4
        try skip(past: "-->")
    }

    // MARK: Bytes

    private func starts(_ text: String) -> Bool {
        let pattern = Array(text.utf8)
        return bytes.count - index >= pattern.count && bytes[index..<(index + pattern.count)].elementsEqual(pattern)
    }

    private mutating func expect(_ text: String) throws {
        guard starts(text) else { throw Malformed() }
        index += text.utf8.count
    }

    /// Moves past the next `terminator`.
    private mutating func skip(past terminator: String) throws {
        while index < bytes.count {
            if starts(terminator) {
                index += terminator.utf8.count
                return
            }
            index += 1
        }
        throw Malformed()
    }

    @discardableResult
    private mutating func skipSpaces() -> Bool {
        let start = index
        while index < bytes.count && isSpace(bytes[index]) { index += 1 }
        return index > start
    }

    private func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
}

/// One page of a `ListObjectsV2` answer, as `S3Storage.list` uses it. Read from the server's bytes, so every
/// field may be missing or malformed: nothing here assumes more than `parse` found.
struct S3ListPage {
    struct Object {
        /// The key with the listed prefix removed.
        let name: String
        let size: Int64
        let modified: Date
    }

    /// The objects whose key starts with the listed prefix, in the answer's order.
    var objects: [Object]
    /// The continuation token of the next page, when the answer says it is truncated.
    var next: String?

    /// The page in `body`, or nil when it is not a `ListBucketResult`. Keys outside `prefix` are skipped; an
    /// unreadable or negative size counts as 0 and an unreadable date as the epoch (a listing is read for names).
    static func parse(_ body: [UInt8], prefix: String) -> S3ListPage? {
        guard let page = S3XMLElement.parse(body), page.name == "ListBucketResult" else { return nil }
        var objects: [Object] = []
        for entry in page.all("Contents") {
            guard let key = entry.value("Key"), key.hasPrefix(prefix) else { continue }
            objects.append(
                Object(
                    name: String(key.dropFirst(prefix.count)),
                    size: entry.value("Size").flatMap(Int64.init).map { max($0, 0) } ?? 0,
                    modified: entry.value("LastModified").flatMap(parseDate) ?? Date(timeIntervalSince1970: 0)))
        }
        return S3ListPage(objects: objects, next: page.value("IsTruncated") == "true" ? page.value("NextContinuationToken") : nil)
    }

    /// S3's timestamps (`2025-01-15T14:30:00.000Z`), with or without fractional seconds. Read with Foundation's
    /// `ISO8601FormatStyle`, not `ISO8601DateFormatter`: on Linux the latter goes through ICU, which dies of
    /// SIGFPE on a long fraction (`…:28.888…8000Z`, found by the s3-xml fuzz target).
    static func parseDate(_ text: String) -> Date? {
        guard text.utf8.count <= 64 else { return nil }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }
}

/// One page of a `ListMultipartUploads` answer, as `S3Storage.abortInterruptedUploads` uses it.
struct S3UploadsPage {
    /// The open uploads listed: each one's full key and upload ID.
    var uploads: [(key: String, id: String)]
    /// Where the next page starts, when the answer says it is truncated and names both markers.
    var next: (key: String, upload: String)?

    /// The page in `body`, or nil when it is not XML. Entries without a key or an upload ID are skipped.
    static func parse(_ body: [UInt8]) -> S3UploadsPage? {
        guard let page = S3XMLElement.parse(body) else { return nil }
        let uploads = page.all("Upload").compactMap { upload in
            upload.value("Key").flatMap { key in upload.value("UploadId").map { (key: key, id: $0) } }
        }
        let next = page.value("IsTruncated") == "true"
            ? page.value("NextKeyMarker").flatMap { key in page.value("NextUploadIdMarker").map { (key, $0) } } : nil
        return S3UploadsPage(uploads: uploads, next: next)
    }
}

