"""Building the results service's store and data-lake clients from its settings."""

from __future__ import annotations

from dataclasses import dataclass

from gridgate.datalake import RucioClient, StorageClient
from gridgate.results.config import ResultsSettings
from gridgate.results.registrar import RucioRegistrar
from gridgate.results.stores import DirectoryStore, NoStore, ResultStore, WebDavStore


@dataclass
class DataLake:
    """The store and, with Rucio configured, the registrar; closed with the worker."""

    store: ResultStore
    registrar: RucioRegistrar | None
    storage: StorageClient
    rucio: RucioClient | None

    @classmethod
    def from_settings(cls, settings: ResultsSettings) -> DataLake:
        storage = StorageClient(
            ca_file=str(settings.storage_ca_file) if settings.storage_ca_file else None,
            token=settings.storage_token.get_secret_value() or None,
            username=settings.storage_username or None,
            password=settings.storage_password.get_secret_value() or None,
        )
        rucio = None
        registrar = None
        if settings.rucio_url:
            rucio = RucioClient(
                settings.rucio_url,
                settings.rucio_account,
                settings.rucio_username or settings.rucio_account,
                settings.rucio_password.get_secret_value(),
                ca_file=str(settings.rucio_ca_file) if settings.rucio_ca_file else None,
            )
            registrar = RucioRegistrar(
                rucio, storage, settings.rucio_rse, scheme=settings.rucio_scheme
            )
        store: ResultStore
        if settings.store == "webdav":
            store = WebDavStore(settings.webdav_url, storage)
        elif settings.store == "rucio":
            store = NoStore()
        else:
            store = DirectoryStore(settings.results_dir)
        return cls(store=store, registrar=registrar, storage=storage, rucio=rucio)

    async def aclose(self) -> None:
        await self.storage.aclose()
        if self.rucio is not None:
            await self.rucio.aclose()
