import Foundation
import Testing

/// The README and the pages of docs/ link to each other's sections; a heading renamed or a section moved breaks
/// such a link silently. Every relative link from the README or a docs page into the README or docs/ must name a
/// file that exists and, with `#anchor`, a heading of it (anchors made as GitHub makes them). Links elsewhere
/// (deploy/, charts/, bench/) belong to those trees and are not checked here.
@Suite struct DocumentationLinksTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var pages: [URL] {
        let docs = root.appendingPathComponent("docs")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: docs.path)) ?? []
        return [root.appendingPathComponent("README.md")]
            + names.filter { $0.hasSuffix(".md") }.sorted().map { docs.appendingPathComponent($0) }
    }

    /// GitHub's anchor for a heading: lower case, punctuation dropped (but `-` and `_`), spaces as `-`.
    static func anchor(_ heading: String) -> String {
        String(
            heading.trimmingCharacters(in: .whitespaces).lowercased().unicodeScalars.compactMap {
                scalar -> Character? in
                if scalar == " " { return "-" }
                if CharacterSet.alphanumerics.contains(scalar) || scalar == "-" || scalar == "_" {
                    return Character(scalar)
                }
                return nil
            })
    }

    /// The lines outside fenced code blocks.
    static func prose(_ text: String) -> [(number: Int, line: Substring)] {
        var inFence = false
        var result: [(Int, Substring)] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("```") {
                inFence.toggle()
                continue
            }
            if !inFence { result.append((index + 1, line)) }
        }
        return result
    }

    static func anchors(of file: URL) -> Set<String> {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return [] }
        return Set(prose(text).filter { $0.line.hasPrefix("#") }.map { anchor(String($0.line.drop { $0 == "#" })) })
    }

    @Test func anchorsAreGitHubs() {
        #expect(Self.anchor(" Retention (cleanup-job)") == "retention-cleanup-job")
        #expect(Self.anchor(" The application's files") == "the-applications-files")
        #expect(Self.anchor(" Security: secrets, encryption") == "security-secrets-encryption")
    }

    @Test func linksBetweenTheReadmeAndTheDocsResolve() throws {
        let pages = Self.pages
        #expect(pages.count > 10, "\(pages.map(\.lastPathComponent))")
        let docs = Self.root.appendingPathComponent("docs").standardizedFileURL.path
        let readme = Self.root.appendingPathComponent("README.md").standardizedFileURL.path
        let link = /\]\(([^)\s]+)\)/
        var checked = 0
        for page in pages {
            let text = try String(contentsOf: page, encoding: .utf8)
            for (number, line) in Self.prose(text) {
                for match in line.matches(of: link) {
                    let target = String(match.1)
                    if target.contains("://") || target.hasPrefix("mailto:") { continue }
                    let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
                    let path = String(parts[0])
                    let file =
                        path.isEmpty
                        ? page
                        : URL(fileURLWithPath: path, relativeTo: page.deletingLastPathComponent()).standardizedFileURL
                    guard file.path == readme || file.path.hasPrefix(docs + "/") else { continue }
                    checked += 1
                    let place = "\(page.lastPathComponent):\(number): \(target)"
                    guard FileManager.default.fileExists(atPath: file.path) else {
                        Issue.record("\(place): no such file")
                        continue
                    }
                    if parts.count == 2, file.pathExtension == "md" {
                        #expect(Self.anchors(of: file).contains(String(parts[1])), "\(place): no such heading")
                    }
                }
            }
        }
        #expect(checked > 40, "only \(checked) links checked")
    }
}
