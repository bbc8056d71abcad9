import BackupCore
import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML element of an S3 response. S3 answers are small, flat documents (a listing page is at most
/// 1,000 entries), so they are read whole into this tree with Foundation's XMLParser rather than streamed.
struct S3XMLElement {
    let name: String
    var text = ""
    var children: [S3XMLElement] = []

    init(name: String) { self.name = name }

    /// The first child of that name.
    subscript(_ child: String) -> S3XMLElement? { children.first { $0.name == child } }

    /// Every child of that name.
    func all(_ child: String) -> [S3XMLElement] { children.filter { $0.name == child } }

    /// The text of the first child of that name.
    func value(_ child: String) -> String? { self[child]?.text }

    /// Parses a document; nil when it is not XML.
    static func parse(_ bytes: [UInt8]) -> S3XMLElement? {
        let builder = Builder()
        let parser = XMLParser(data: Data(bytes))
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else { return nil }
        return root
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [S3XMLElement] = []
        var root: S3XMLElement?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            stack.append(S3XMLElement(name: elementName))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            guard let element = stack.popLast() else { return }
            if stack.isEmpty {
                root = element
            } else {
                stack[stack.count - 1].children.append(element)
            }
        }
    }

    /// Escapes text for an XML body we send.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
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

    /// S3's timestamps (`2025-01-15T14:30:00.000Z`), with or without fractional seconds.
    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
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

