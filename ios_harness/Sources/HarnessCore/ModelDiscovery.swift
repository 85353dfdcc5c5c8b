#if canImport(CoreML)
import CoreML
import Foundation
import HarnessCore

/// A Core ML model file found on disk.
public struct ModelLocation: Equatable, Sendable {
    /// The kind of model file.
    public enum Format: String, Sendable {
        /// `.mlmodelc`: compiled, loads directly.
        case compiled = "mlmodelc"
        /// `.mlpackage`: compiled with `MLModel.compileModel(at:)` before loading.
        case package = "mlpackage"
        /// `.mlmodel`: compiled with `MLModel.compileModel(at:)` before loading.
        case specification = "mlmodel"
    }

    /// Model name: the file stem (``ModelSelection/modelName(fromFileName:)``).
    public let name: String
    /// The file (a directory for `.mlmodelc` and `.mlpackage`).
    public let url: URL
    /// The kind of file.
    public let format: Format

    /// The file name, e.g. `mobileone_s0.mlmodelc`.
    public var fileName: String { url.lastPathComponent }

    /// A location for `url`, or nil when its extension is not a model extension.
    public init?(url: URL) {
        guard let ext = ModelSelection.modelExtension(of: url.lastPathComponent),
              let format = Format(rawValue: ext)
        else {
            return nil
        }
        self.url = url
        self.format = format
        self.name = ModelSelection.modelName(fromFileName: url.lastPathComponent)
    }
}

/// What went wrong while looking for models.
public enum ModelDiscoveryError: Error, Equatable, CustomStringConvertible, LocalizedError {
    case notFound(path: String)
    case notAModel(path: String)
    case unreadableDirectory(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(path):
            return "no such file or directory: \(path)"
        case let .notAModel(path):
            return "not a Core ML model (.mlmodelc, .mlpackage, .mlmodel) or a directory: \(path)"
        case let .unreadableDirectory(path, reason):
            return "cannot list \(path): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

/// Finds Core ML models in directories, given files and app bundles.
public enum ModelDiscovery {
    /// Models at `paths`: each path is a model file, or a directory whose direct entries are
    /// searched (not recursively: a `.mlmodelc` is itself a directory). Sorted by name; when two
    /// files share a name, the first path given wins.
    ///
    /// - Throws: ``ModelDiscoveryError`` for a missing path, a file that is not a model, or an
    ///   unreadable directory.
    public static func models(at paths: [URL]) throws -> [ModelLocation] {
        var found: [ModelLocation] = []
        for path in paths {
            if let location = ModelLocation(url: path) {
                guard FileManager.default.fileExists(atPath: path.path) else {
                    throw ModelDiscoveryError.notFound(path: path.path)
                }
                found.append(location)
                continue
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) else {
                throw ModelDiscoveryError.notFound(path: path.path)
            }
            guard isDirectory.boolValue else {
                throw ModelDiscoveryError.notAModel(path: path.path)
            }
            found += try models(inDirectory: path)
        }
        return uniqueSortedByName(found)
    }

    /// Models in `directory`'s direct entries, sorted by name.
    public static func models(inDirectory directory: URL) throws -> [ModelLocation] {
        let entries: [URL]
        do {
            entries = try FileManager.default.contentsOfDirectory(
                at: directory, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles])
        } catch {
            throw ModelDiscoveryError.unreadableDirectory(path: directory.path, reason: error.localizedDescription)
        }
        return uniqueSortedByName(entries.compactMap(ModelLocation.init(url:)))
    }

    /// Models bundled with an app: the direct entries of the bundle's `Models/` folder (where the
    /// Python CLI stages them), then of its resource root (where Xcode puts models added to the
    /// target). Sorted by name; `Models/` wins on a name clash.
    public static func bundledModels(in bundle: Bundle = .main) -> [ModelLocation] {
        guard let resources = bundle.resourceURL else { return [] }
        let directories = [resources.appendingPathComponent("Models", isDirectory: true), resources]
        var found: [ModelLocation] = []
        for directory in directories {
            if let entries = try? Self.models(inDirectory: directory) {
                found += entries
            }
        }
        return uniqueSortedByName(found)
    }

    private static func uniqueSortedByName(_ locations: [ModelLocation]) -> [ModelLocation] {
        var seen = Set<String>()
        let unique = locations.filter { seen.insert($0.name).inserted }
        return unique.sorted { $0.name < $1.name }
    }
}

/// Compiles model packages and specifications so they can be loaded.
public enum ModelCompiler {
    /// A compiled model for `location`.
    ///
    /// - Returns: `location.url` for a `.mlmodelc`; otherwise the temporary `.mlmodelc` that
    ///   `MLModel.compileModel(at:)` produced (the caller may delete it when done).
    public static func compiledURL(for location: ModelLocation) async throws -> URL {
        switch location.format {
        case .compiled:
            return location.url
        case .package, .specification:
            return try await MLModel.compileModel(at: location.url)
        }
    }
}
#endif
