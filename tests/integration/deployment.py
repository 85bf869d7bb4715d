"""What any way of deploying a service must give it: every setting whose default would point at
localhost (inside a container: at nothing), a JWT secret, a database and a port."""

import importlib


def assert_configured(service: str, environment: dict[str, str]) -> None:
    settings_class = importlib.import_module(f"{service}.settings").Settings
    for field_name, field in settings_class.model_fields.items():
        names = {field_name.upper()}
        if field.validation_alias is not None:
            names |= {str(choice) for choice in getattr(field.validation_alias, "choices", [field.validation_alias])}
        needs_value = "127.0.0.1" in str(field.default) or field_name in ("jwt_secret", "database_url", "http_port")
        if needs_value:
            assert names & environment.keys(), f"{service}: none of {sorted(names)} is set"
    settings = settings_class.model_validate(environment)  # and what is set is valid
    assert "127.0.0.1" not in settings.model_dump_json(), f"{service} would still talk to localhost"
