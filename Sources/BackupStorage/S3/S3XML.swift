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
