"""Korean: the numeric date style of Korean documents, 24-hour clock (Django's is 12-hour, 오전/오후)."""

DATETIME_FORMAT = "Y. n. j. H:i:s"
SHORT_DATETIME_FORMAT = "Y. n. j. H:i"
SHORT_DATE_FORMAT = "Y. n. j."
